"""The one training loop (teach, distill, finetune), its losses and its checkpoints."""
