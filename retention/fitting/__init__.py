"""Retention traces, their decay fits and the memoryless null runs."""
