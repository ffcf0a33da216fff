"""Fine-tuning and pretraining: the trainer, models, augmentation, samplers, checkpoints, GPUs."""
