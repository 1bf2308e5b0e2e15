"""The caps on what an untrusted OFD may make us do, and the error every refusal raises.

The package sets these here when a caller sets `docket.ofd.MAX_…`, and the readers look them up
here at call time, so changing a limit on the package still takes effect."""
from __future__ import annotations

from docket.errors import DocumentError

MAX_ENTRIES = 5_000                 # files in the archive
MAX_CENTRAL_DIRECTORY = 4 << 20     # bytes of ZIP central directory
MAX_TOTAL_BYTES = 256 << 20         # declared uncompressed size of all entries together
MAX_PART_BYTES = 32 << 20           # one entry, inflated (images, fonts, attachments)
MAX_XML_BYTES = 8 << 20             # one XML entry, inflated
MAX_RATIO = 200                     # inflated/compressed, checked for entries over 1 MiB
MAX_PAGES = 10_000                  # pages an OFD may list at all (callers apply their own limit)
MAX_NESTING = 32                    # PageBlock / CompositeObject depth followed
MAX_OBJECTS = 50_000                # graphic objects drawn or read on one page
MAX_PATH_POINTS = 500_000           # flattened path points on one page
MAX_IMAGE_PIXELS = 40_000_000       # one embedded image
MAX_RENDER_SIDE = 10_000            # pixels


def _corrupt(detail: str) -> DocumentError:
    return DocumentError(detail, code="corrupt_document", status=422, title="Corrupt document")
