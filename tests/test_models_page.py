"""The models page's data, read from a real local registry: every version, the one inference uses
marked, the training record (rows, run, commit) and the importances, two versions side by side."""

from __future__ import annotations

import pytest
from helpers.stores import train, using_store

from serverless_ml.apps import models_page
from serverless_ml.runs.provenance import git_state
from serverless_ml.store.login import login
from serverless_ml.training.registry import best_model


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    "A local store where run `run-a` trained iris, run `run-b` trained it again, and titanic once; its registry."
    home = tmp_path_factory.mktemp("models_page")
    with using_store(home), pytest.MonkeyPatch.context() as patch:
        project = login("local")
        for run_id, dataset in (("run-a", "iris"), ("run-b", "iris"), ("run-a", "titanic")):
            patch.setenv("SML_RUN_ID", run_id)
            train(project, dataset)
        yield project.get_model_registry()


def test_every_version_is_listed_newest_first_with_the_one_inference_uses_marked(registry):
    versions = models_page.registered_versions(registry, "iris")
    assert [facts.version for facts in versions] == [2, 1]
    in_use = [facts.version for facts in versions if facts.in_use]
    assert in_use == [best_model(registry, "iris").version]


def test_each_version_shows_its_training_rows_feature_view_run_and_commit(registry):
    newest, oldest = models_page.registered_versions(registry, "iris")
    assert (newest.run_id, oldest.run_id) == ("run-b", "run-a")
    assert newest.commit == git_state()["commit"]
    assert newest.feature_view == "iris v1" and newest.training_rows == 120  # 150 flowers, 20 % held out
    assert newest.confusion_png.startswith(b"\x89PNG") and newest.created
    table = models_page.versions_table_html([newest, oldest])
    assert "run run-b" in table and "120" in table and models_page.IN_USE in table


def test_titanic_shows_its_strongest_features_and_iris_says_it_has_none(registry):
    titanic = models_page.registered_versions(registry, "titanic")[0]
    shares = models_page.version_importance(titanic)
    assert shares is not None and any(name.startswith("sex") for name in shares.index[:3])
    iris = models_page.registered_versions(registry, "iris")[0]
    assert models_page.version_importance(iris) is None
    assert "no feature importance" in models_page.version_card_html(iris, None)


def test_two_picked_versions_show_side_by_side_and_a_single_version_says_so(registry):
    tab = models_page.ModelsTab("iris", models_page.registered_versions(registry, "iris"))
    tab.picker.value = (1, 2)
    assert [card.value.count("<h3>Version") for card in tab.cards.children] == [1, 1]
    assert "Version 2" in tab.cards.children[0].value and "Version 1" in tab.cards.children[1].value
    single = models_page.ModelsTab("titanic", models_page.registered_versions(registry, "titanic"))
    assert "Only one version of titanic_model is registered" in single.notice.value
