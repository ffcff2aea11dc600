"""mkd: multi-task knowledge distillation of pretrained language models (Liu et al., MKD)."""

__version__ = "0.1.0"
