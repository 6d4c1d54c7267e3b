"""Bit-exact integer twin of the EP core, its weight images and the float → fixed quantiser."""

from .image import IMAGE_FORMAT, check_spec, load_image, quantize_export, write_image
from .twin import EPCoreTwin, Registers, SampleRecord, init_weights, pack_memory, random_weights, unpack_memory

__all__ = ["IMAGE_FORMAT", "EPCoreTwin", "Registers", "SampleRecord", "check_spec", "init_weights", "load_image",
           "pack_memory", "quantize_export", "random_weights", "unpack_memory", "write_image"]
