import pytest

from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.pixels.ocr import TextLine, Word
from deid_pipeline.core.pixels.phi import PixelPhiJudge, Reason
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private


def line(*words: str) -> TextLine:
    return TextLine((0, 0, 9, 9), " ".join(words), 0.9,
                    [Word(w, (i * 10, 0, i * 10 + 9, 9), 0.9) for i, w in enumerate(words)])


@pytest.fixture
def judge():
    ds = ct_with_nested_and_private()  # DOE^JANE, MRN12345
    ds.PatientBirthDate, ds.StudyDate, ds.PatientSex = "19861215", "20120301", "F"
    ds.OperatorsName = "TAYLOR^JOHN"
    ds.InstitutionName = "Maynard-Clarke Medical Clinic"
    return PixelPhiJudge(gather(ds), sex="F", ages=["025Y"])


def verdicts(judge, *words):
    return [(v.is_phi, v.reason) for v in judge.judge(line(*words))]


def test_the_midi_b_banner_is_phi_word_by_word_even_misread(judge):
    assert verdicts(judge, "D0E", "JANE", "[F]", "01.03.2012") == [
        (True, Reason.NAME), (True, Reason.NAME), (True, Reason.SEX), (True, Reason.DATE)]
    # The field's label goes with its value: MIDI-B reads the whole box of the field.
    assert verdicts(judge, "DOB:", "12.15.1986") == [(True, Reason.SAME_LINE), (True, Reason.DATE)]
    assert verdicts(judge, "DOB:") == [(False, Reason.SAFE)]


def test_every_date_format_of_a_header_date_is_found(judge):
    for words in (["2012-03-01"], ["03/01/2012"], ["01-MAR-2012"], ["2012", "Mar", "01"],
                  ["20120301"], ["3/1/2012"]):
        assert all(phi for phi, _ in verdicts(judge, *words)), words


def test_header_values_ids_places_ages_and_initials(judge):
    assert verdicts(judge, "Patient", "ID", "MRN12345")[-1] == (True, Reason.IDENTIFIER)
    assert verdicts(judge, "MAYNARD-CLARKE")[0] == (True, Reason.PLACE)
    assert verdicts(judge, "Age", "25") == [(True, Reason.SAME_LINE), (True, Reason.AGE)]
    assert verdicts(judge, "JT") == [(True, Reason.INITIALS)]


def test_phi_the_header_does_not_hold_is_caught_by_pattern():
    judge = PixelPhiJudge(gather(ct_with_nested_and_private()))
    assert verdicts(judge, "SWU") == [(True, Reason.INITIALS_PATTERN)]  # staff initials
    assert verdicts(judge, "RAK/PA") == [(True, Reason.INITIALS_PATTERN)]
    for words in (["8815502"], ["07/04/1999"], ["14:22:05"]):
        (phi, reason), = verdicts(judge, *words)
        assert phi and reason.value.startswith("pattern:"), words


def test_safe_annotations_are_kept(judge):
    for words in (["L"], ["R"], ["AP"], ["PORTABLE"], ["120", "kVp"], ["Se:", "3", "Im:", "12"],
                  ["W:400", "L:40"], ["5", "cm"], ["CT"]):
        assert not any(phi for phi, _ in verdicts(judge, *words)), words


def test_redact_all_text_mode_hides_everything():
    judge = PixelPhiJudge(gather(ct_with_nested_and_private()), redact_all_text=True)
    assert verdicts(judge, "L", "PORTABLE") == [(True, Reason.ALL_TEXT)] * 2


def test_a_model_span_adds_phi_nothing_else_knows():
    judge = PixelPhiJudge(gather(ct_with_nested_and_private()),
                          finders=[lambda text: [(text.index("Zorblat"), len(text) - 1)]])
    assert verdicts(judge, "seen", "by", "Zorblat")[-1] == (True, Reason.NER)
