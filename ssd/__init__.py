"""ssd: semi-supervised distillation of neural rankers, orchestrated with TFX."""
