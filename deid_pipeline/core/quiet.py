"""Keep pydicom's messages about a file out of logs and terminals.

pydicom reports odd values by warning *and* logging them, quoting the value ("invalid value for
VR DA: '1986/03/15'"), and a value can be PHI. Around the handling of one file both channels are
muted; what matters reaches the caller as an exception, a note or a quarantine reason.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

PYDICOM_LOGGER = logging.getLogger("pydicom")


@contextmanager
def file_messages_muted() -> Iterator[None]:
    previous = PYDICOM_LOGGER.disabled
    PYDICOM_LOGGER.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        PYDICOM_LOGGER.disabled = previous
