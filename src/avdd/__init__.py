"""avdd: audio-visual deepfake detection with frozen self-supervised representations.

Reproducible companion to Boldisor, Smeu, Oneata, Oneata, *Investigating self-supervised
representations for audio-visual deepfake detection* (arXiv 2511.17181, CVPR 2026).
"""

__version__ = "0.1.0"
