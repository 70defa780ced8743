"""Keep pydicom's (and tifffile's) messages about a file out of logs and terminals.

pydicom reports odd values by warning *and* logging them, quoting the value ("invalid value for
VR DA: '1986/03/15'"), and a value can be PHI. Around the handling of one file both channels are
muted; what matters reaches the caller as an exception, a note or a quarantine reason.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# tifffile logs what it finds wrong in a damaged slide; the reason reaches the quarantine anyway.
LOGGERS = (logging.getLogger("pydicom"), logging.getLogger("tifffile"))


@contextmanager
def file_messages_muted() -> Iterator[None]:
    previous = [logger.disabled for logger in LOGGERS]
    for logger in LOGGERS:
        logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, disabled in zip(LOGGERS, previous, strict=True):
            logger.disabled = disabled
