"""Names of the embedding losses, importable without torch (the command line's choices).

:data:`topoembed.embed.LOSSES` maps each name to its estimator; a test checks that the two agree.
"""
LOSS_NAMES = ("contrastive", "infonce", "neg", "nce", "sketchmap", "sketchmap_sym", "triplet")
