"""Frozen features on disk: the feature store (:mod:`.store` writes, :mod:`.featureset` reads,
:mod:`.layout` holds the on-disk format, its checksums and ``avdd check-store``), the
extraction runner (:mod:`.extract`), scale-out over ranks (:mod:`.distributed`), thread
settings (:mod:`.threads`) and the study's first step, data and features ready
(:mod:`.prepare`)."""
