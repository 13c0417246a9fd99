"""Building blocks that several backbone families share: convolutional front-ends
(:mod:`.resnet`), ESPnet relative-position attention (:mod:`.relpos`), lip-model audio
features (:mod:`.audio`), the lip models' inputs cut to a common length (:mod:`.lip_inputs`)
and frame-rate conversions (:mod:`.frames`). A family file imports these, never another family.
"""
