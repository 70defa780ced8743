import pytest

from deid_pipeline.core.deid.free_text import clean_text
from deid_pipeline.core.deid.identifiers import IdentifyingValues
from deid_pipeline_tests.tiny_ner import MARKED_WORD, build_tiny_ner

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def finder(tmp_path_factory):
    from deid_pipeline.core.deid.ner import NerSpanFinder

    return NerSpanFinder(build_tiny_ner(tmp_path_factory.mktemp("ner")))


def test_model_spans_remove_a_name_no_header_value_or_pattern_knows(finder):
    text = f"follow-up of pulmonary nodule seen by {MARKED_WORD}"

    assert clean_text(text, IdentifyingValues()) == text  # no header value, no pattern
    assert clean_text(text, IdentifyingValues(), [finder]) == "follow-up of pulmonary nodule seen by"


def test_model_keeps_text_it_tags_as_other(finder):
    assert finder("ct chest for the patient") == []


def test_missing_model_folder_is_a_clear_error(tmp_path):
    from deid_pipeline.core.deid.ner import NerSpanFinder

    with pytest.raises(FileNotFoundError, match="no token-classification model"):
        NerSpanFinder(tmp_path / "absent")


def test_policy_ner_section_cleans_free_text_through_the_engine(tmp_path, monkeypatch):
    from deid_pipeline.core.deid.engine import TagEngine
    from deid_pipeline.core.policy.rules import load_policy
    from deid_pipeline.core.pseudonyms import Pseudonymizer
    from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private

    build_tiny_ner(tmp_path / "model")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("ner:\n  model: model\n  min_score: 0.9\n")
    engine = TagEngine(load_policy([policy_file]), Pseudonymizer(b"k"))
    ds = ct_with_nested_and_private()
    ds.StudyDescription = f"ct chest for {MARKED_WORD}"

    engine.deidentify(ds)

    assert ds.StudyDescription == "ct chest for"
