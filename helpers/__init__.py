"""Helpers for the fine-tuning workbook: the logic the notebooks call, kept importable and tested."""

__all__ = ["profiles", "models", "quantization"]
