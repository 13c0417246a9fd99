"""What is trained on frozen features: the paper's linear probe (:mod:`.probe`, its compiled
kernels in :mod:`.probe_kernels`, its epoch order in :mod:`.probe_order`, files in
:mod:`.probe_io`, its scoring maths in :mod:`.scoring`), a temporal Transformer head (:mod:`.transformer`), and the anomaly detectors
trained on real videos only: next-token prediction (:mod:`.ntp`) and audio-visual sync
(:mod:`.sync`), with their pretext diagnostics (:mod:`.pretext`) and the padded batches they share
(:mod:`.sequences`). Estimators follow scikit-learn."""
