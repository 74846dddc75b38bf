"""`newsdesk search` and the index commands, through the real CLI over the fixture world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fixtures.search.world import build_world
from web.cli import main


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    build_world(root).close()
    path = root / "config.toml"
    path.write_text(f'data_dir = "{root / "data"}"\n')
    return path


def newsdesk(config_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config_path), *args])
    return result.exit_code, result.output


def test_search_json_has_the_api_shape(config_path: Path) -> None:
    code, out = newsdesk(config_path, "search", "dock strike", "--json")
    data = json.loads(out)
    assert code == 0 and data["total"] == 3 and data["hits"][0]["duplicate_count"] == 2
    assert {"facets", "suggestion", "notices", "pages"} <= set(data)


def test_search_text_with_filters_and_features(config_path: Path) -> None:
    code, out = newsdesk(config_path, "search", "strike OR election", "--source", "Valley Times", "--sort", "newest")
    assert code == 0 and "2 results" in out and "Valley Times" in out and "Northern Wire" not in out
    code, out = newsdesk(config_path, "search", "mackrel")
    assert "did you mean: mackerel" in out
    code, out = newsdesk(config_path, "search", "dock strike")
    assert "+ 2 more from other outlets" in out and "[Dock]" in out
    code, out = newsdesk(config_path, "search", "ferry", "--from", "2024-05-15", "--to", "2024-05-15", "--json")
    assert json.loads(out)["total"] == 1


def test_bad_options_are_one_line_errors(config_path: Path) -> None:
    code, out = newsdesk(config_path, "search", "ferry", "--from", "soon")
    assert code == 1 and "--from must be a date" in out and "Traceback" not in out
    code, out = newsdesk(config_path, "search", "ferry", "--per-page", "500")
    assert code == 2


def test_index_optimize(config_path: Path) -> None:
    code, out = newsdesk(config_path, "index", "--optimize")
    assert code == 0 and "into 1" in out
