"""What the book shows beside the numbers: the paper's reference numbers (:mod:`.reference`),
the labels every page carries (:mod:`.notices`), shared plots (:mod:`.plots`) and the executor
that runs stale notebooks (:mod:`.book`)."""
