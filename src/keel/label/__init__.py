"""Layer 2: labeling controls: label projects with guidelines, several annotators per item, gold and qualification
items, agreement, consensus, reviews and audits; the consensus labels become a dataset version.

Needs the ``label`` extra (``pip install 'keel[label]'``).
"""

from __future__ import annotations

__all__: list[str] = []
