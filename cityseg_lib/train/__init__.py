"""Training stage: losses, metrics, the plain-function loop and ``fit``, checkpoints, DDP helpers."""
