from __future__ import annotations

import pytest

from schedules import ZoneTree
from tests.schedules.helpers import commune_tree


@pytest.fixture
def tree() -> ZoneTree:
    return commune_tree()
