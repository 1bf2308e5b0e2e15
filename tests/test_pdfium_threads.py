"""PDFium is not thread-safe: the API renders pages and inspects uploads on many threads at
once. Run that in a child process, so a heap corruption shows as a failed test, not a dead run."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

STRESS = textwrap.dedent("""
    import sys, tempfile
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    from tests.documents import pdf
    from docket.documents import inspect
    from docket.pages import page_image, prepare
    folder = Path(tempfile.mkdtemp())
    paths = []
    for n in range(4):
        p = folder / f"d{n}.pdf"
        p.write_bytes(pdf(pages=3, text=f"doc {n}"))
        paths.append(p)
    def work(i):
        p = paths[i % 4]
        if i % 3 == 0:
            return inspect(p, max_pixels=40_000_000, max_pages=50).page_count
        if i % 3 == 1:
            return len(prepare(p, "application/pdf", max_side=600, max_pages=3).pages)
        return page_image(p, "application/pdf", i % 3, max_side=600).size[0]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(400)))
    assert all(results), results
    print("ok", len(results))
""")


def test_pdfium_is_safe_from_many_threads():
    done = subprocess.run([sys.executable, "-c", STRESS], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and done.stdout.strip() == "ok 400", (done.returncode, done.stderr[-2000:])
