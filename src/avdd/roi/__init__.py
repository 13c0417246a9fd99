"""Face and mouth regions of a clip: what the visual backbones look at.

media (Clip) -> :mod:`.regions` (the :class:`~.regions.Roi` a dataset's annotations give) ->
:mod:`.landmarks` (68 points: synthetic, dlib, mediapipe) -> :mod:`.align` (the AVH-Align
similarity to the mean face, 96 x 96 mouth crops: AV-HuBERT, BRAVEn) and :mod:`.autoavsr`
(the MediaPipe-keypoint crop of the paper's Auto-AVSR rows) -> :mod:`.mouth` (once per video
and recipe, cached, shared by the lip models; :mod:`.stream` makes the same ROIs of a long
clip a window at a time). :mod:`.faces` makes FSFM's detector-box face crops; :mod:`.image`
holds the pixel conversions they share.

Import the submodules: this face stays empty so that ``avdd.roi.regions`` (imported by every
backbone) does not pull in scikit-image.
"""
