"""Frozen features on disk: the feature store (:mod:`.store` writes, :mod:`.featureset` reads),
the extraction runner (:mod:`.extract`), scale-out over ranks (:mod:`.distributed`) and the
study's first step, data and features ready (:mod:`.prepare`)."""
