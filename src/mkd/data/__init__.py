"""Tokenization, dynamic-padding batches, the multi-task sampler, augmentation, transfer sets."""
