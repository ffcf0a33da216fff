"""Datasets and weights: download, archives, timm weights, dataset listings and preparation."""
