"""What the book shows beside the numbers: the paper's reference numbers (:mod:`.reference`),
the labels every page carries (:mod:`.notices`) and how it writes numbers (:mod:`.format`),
shared plots (:mod:`.plots`), each page's figures and tables as files (:mod:`.page`,
:mod:`.export`) and the executor that runs stale notebooks (:mod:`.book`)."""
