"""The study's steps, one module per table or figure family, each cached
(:mod:`.cache`): Table 1 (:mod:`.representations`), the Table 2 grid of linear probes
(:mod:`.linear_probing`), Table 3 (:mod:`.sota`), Table 4 (:mod:`.anomaly`), temporal
explanations (Figs. 2-3, :mod:`.temporal`), spatial explanations (Fig. 4, :mod:`.spatial`),
correlation and fusion (Fig. 5, :mod:`.fusion`), the appendix (:mod:`.appendix`), and the
metrics they report (:mod:`.metrics`). Compute only: the notebooks plot."""
