import pytest

from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.pixels.ocr import TextLine, Word
from deid_pipeline.core.pixels.phi import PixelPhiJudge, Reason, awaits_value
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


def test_what_follows_an_identifying_label_is_its_value_however_read(judge):
    # A date cut short ("1950-" of 1950-01-20) matches nothing of the file's own.
    assert verdicts(judge, "DOB:", "1950-") == [(True, Reason.SAME_LINE),
                                                 (True, Reason.FIELD_VALUE)]
    assert verdicts(judge, "ID:X7Q") == [(True, Reason.FIELD_VALUE)]
    # "Mar" read "M:" is no label ending the value; a letter alone in a value is no "L" for left.
    assert [phi for phi, _ in verdicts(judge, "DOB:", "1981", "M:", "21")] == [True] * 4
    assert verdicts(judge, "Name:", "Qwerty", "L") == [
        (True, Reason.SAME_LINE), (True, Reason.FIELD_VALUE), (True, Reason.FIELD_VALUE)]
    assert verdicts(judge, "Name:", "Qwerty", "Se:", "3") == [
        (True, Reason.SAME_LINE), (True, Reason.FIELD_VALUE), (False, Reason.SAFE),
        (True, Reason.SAME_LINE)]
    # The study's description is no identifying value; parameters are no labels of one.
    assert not any(phi for phi, _ in verdicts(judge, "Study:", "Brain", "TE:12", "7"))


def test_every_date_format_of_a_header_date_is_found(judge):
    for words in (["2012-03-01"], ["03/01/2012"], ["01-MAR-2012"], ["2012", "Mar", "01"],
                  ["20120301"], ["3/1/2012"]):
        assert all(phi for phi, _ in verdicts(judge, *words)), words


def test_header_values_ids_places_ages_and_initials(judge):
    assert verdicts(judge, "Patient", "ID", "MRN12345")[-1] == (True, Reason.IDENTIFIER)
    assert verdicts(judge, "MAYNARD-CLARKE")[0] == (True, Reason.PLACE)
    assert verdicts(judge, "Age", "25") == [(True, Reason.SAME_LINE), (True, Reason.AGE)]
    assert verdicts(judge, "JT") == [(True, Reason.INITIALS)]
    # A label is no initials: "Im:" of "Se: 1 Im: 2" read "Jt:".
    assert not any(phi for phi, _ in verdicts(judge, "Se:", "1", "Jt:", "2"))


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


def test_values_read_in_pieces_still_match(judge):
    # A space lost, a letter read as a digit, a word split apart by the OCR.
    assert verdicts(judge, "Study", "Date:", "2012", "Mar01")[2:] == [(True, Reason.DATE)] * 2
    assert verdicts(judge, "2012", "Mar", "0l")[0] == (True, Reason.DATE)
    assert verdicts(judge, "Name:", "DOE", "JA", "NE")[2:] == [(True, Reason.NAME)] * 2
    assert verdicts(judge, "Age:25") == [(True, Reason.AGE)]  # label and value glued
    # A month's name among digits misread as letters ("a5" of 15).
    assert verdicts(judge, "DOB:", "1986", "Dec", "a5")[1:] == [(True, Reason.DATE)] * 3


def test_a_value_cut_short_at_the_end_of_its_line_gets_the_whole_values_box(judge):
    # "TAYLOR JO" where JOHN runs on under anatomy: JO is the name, its box 2 letters wider.
    (_, _), (phi, reason) = verdicts(judge, "TAYLOR", "JO")
    assert phi and reason is Reason.NAME
    assert judge.judge(line("TAYLOR", "JO"))[1].box == (10, 0, 29, 9)
    # A lone piece of four letters or more is enough ("AYLO" of TAYLOR).
    assert verdicts(judge, "AYLO") == [(True, Reason.NAME)]
    # A date read without its last digit at the end of its line: the box grows by one.
    assert [(v.reason, v.box) for v in judge.judge(line("DOB:", "12.15.198"))][1] == (
        Reason.DATE, (10, 0, 21, 9))
    # A birth year all that was read of its date (the rest over the skull's rim): the box
    # grows by the most any year-first rendering lacks ("1986 DEC 15": seven characters).
    assert [(v.reason, v.box) for v in judge.judge(line("DOB:", "1986"))][1] == (
        Reason.FIELD_VALUE, (10, 0, 37, 9))
    assert [(v.is_phi, v.box) for v in judge.judge(line("DOB:1986"))] == [(True, (0, 0, 18, 9))]
    # Not inside a line, not any year: the box stays.
    assert [v.box for v in judge.judge(line("DOB:", "1986", "Dec"))][1] == (10, 0, 19, 9)
    assert [v.box for v in judge.judge(line("DOB:", "1987"))][1] == (10, 0, 19, 9)
    # Two letters alone are no piece of a name (initials, by pattern): the box stays.
    assert [(v.reason, v.box) for v in judge.judge(line("JO"))] == [
        (Reason.INITIALS_PATTERN, (0, 0, 9, 9))]


def test_a_safe_word_of_the_files_own_value_goes_with_it():
    ds = ct_with_nested_and_private()
    ds.InstitutionName = "Francis Medical Center"
    judge = PixelPhiJudge(gather(ds))
    assert verdicts(judge, "Francis", "Medical", "Center") == [(True, Reason.PLACE)] * 3
    assert verdicts(judge, "Center") == [(False, Reason.SAFE)]  # window centre, alone
    ds.InstitutionName = "University of Tammystad Medical Center"
    judge = PixelPhiJudge(gather(ds))
    assert verdicts(judge, "University", "of", "Tammystad") == [(True, Reason.PLACE)] * 3
    assert verdicts(judge, "No", "of", "images") == [(False, Reason.SAFE),
                                                     (False, Reason.SAFE),
                                                     (False, Reason.UNMATCHED)]


def test_views_and_unsure_reads_are_no_initials(judge):
    assert verdicts(judge, "LCC") == [(False, Reason.SAFE)]  # mammography view and side
    assert verdicts(judge, "DLP") == [(False, Reason.SAFE)]  # CT dose
    unsure = TextLine((0, 0, 9, 9), "KQZ", 0.3, [Word("KQZ", (0, 0, 9, 9), 0.3)])
    assert [v.is_phi for v in judge.judge(unsure)] == [False]  # texture read as letters
    unsure_age = TextLine((0, 0, 9, 9), "25", 0.17, [Word("25", (0, 0, 9, 9), 0.17)])
    assert [v.is_phi for v in judge.judge(unsure_age)] == [False]  # a blob read as the age
    assert verdicts(judge, "25Y") == [(True, Reason.AGE)]


def test_a_bare_number_is_the_age_only_beside_a_label_or_other_phi(judge):
    # "Se: 25 Im: 3" of a 25-year-old: series, image and slice numbers collide with ages.
    assert verdicts(judge, "Se:", "25", "Im:", "3")[1] == (False, Reason.UNMATCHED)
    assert verdicts(judge, "25") == [(False, Reason.UNMATCHED)]
    assert verdicts(judge, "JT", "25")[1] == (True, Reason.AGE)
    assert verdicts(judge, "Age", "25")[1] == (True, Reason.AGE)


def test_lines_cut_apart_on_a_row_are_judged_as_one():
    from deid_pipeline.core.pixels.phi import visual_lines

    def piece(text, x1, x2, y1=100, y2=111):
        return TextLine((x1, y1, x2, y2), text, 0.9, [Word(text, (x1, y1, x2, y2), 0.9)])

    joined, = visual_lines([piece("cus", 160, 190), piece("THOMPSON MA", 40, 150)])
    assert joined.text == "THOMPSON MA cus" and joined.box == (40, 100, 190, 111)
    assert len(visual_lines([piece("THOMPSON", 40, 120), piece("L", 400, 410)])) == 2
    assert len(visual_lines([piece("THOMPSON", 40, 120), piece("AP", 130, 150, 140, 151)])) == 2


def test_a_value_wrapped_onto_the_next_line_is_hidden_as_one_block():
    ds = ct_with_nested_and_private()
    ds.InstitutionName = "Maynard-Clarke Medical Clinic"
    judge = PixelPhiJudge(gather(ds))
    first = TextLine((10, 100, 300, 111), "Institution Name: Maynard-Clarke Medical", 0.9, [
        Word("Institution", (10, 100, 80, 111), 0.9), Word("Name:", (86, 100, 120, 111), 0.9),
        Word("Maynard-Clarke", (126, 100, 240, 111), 0.9),
        Word("Medical", (246, 100, 300, 111), 0.9)])
    second = TextLine((127, 114, 170, 125), "Clinic", 0.9, [Word("Clinic", (127, 114, 170, 125),
                                                                 0.9)])
    verdicts = judge.judge_frame([first, second])
    assert all(v.is_phi for v in verdicts)
    assert verdicts[-1].box == (127, 114, 300, 125)  # as wide as the value above


def test_the_words_of_one_value_are_hidden_as_one_block(judge):
    # "2012 Mar 01" read "2012 Mar 1": the dropped "0" lies between the last two boxes.
    words = [Word("2012", (0, 0, 30, 9), 0.9), Word("Mar", (40, 0, 62, 9), 0.9),
             Word("1", (80, 0, 86, 9), 0.9)]
    verdicts = judge.judge(TextLine((0, 0, 86, 9), "2012 Mar 1", 0.9, words))
    assert [v.reason for v in verdicts] == [Reason.DATE] * 3
    assert [v.box for v in verdicts] == [(0, 0, 39, 9), (40, 0, 79, 9), (80, 0, 86, 9)]


def test_acquisition_parameters_stay_beside_a_misread_word(judge):
    # "TR:6" misread as letters reads like initials: the parameters beside it are no PHI field.
    assert verdicts(judge, "TRPO", "TE:1.6") == [(True, Reason.INITIALS_PATTERN),
                                                  (False, Reason.SAFE)]
    # The colon lost, or a display parameter: still a parameter (at most four digits glued).
    for words in (["TE1.6"], ["W:1400", "L700"], ["kVp=120"], ["SL:5.0mm"]):
        assert not any(phi for phi, _ in verdicts(judge, *words)), words
    # A PHI field's label with its value is the value; an ID with a letter before it is no
    # parameter.
    assert verdicts(judge, "Age:25") == [(True, Reason.AGE)]
    assert verdicts(judge, "L1234567")[0][0]


def test_an_id_read_without_its_first_character_grows_to_the_left(judge):
    # "RN12345" of MRN12345 (the detector's box began inside the M): two characters wider.
    (reason, box), = [(v.reason, v.box) for v in judge.judge(line("RN12345"))]
    assert reason is Reason.IDENTIFIER and box[0] < 0 + 1 and box[2] == 9
    verdict, = judge.judge(TextLine((40, 0, 109, 9), "RN12345", 0.9,
                                    [Word("RN12345", (40, 0, 109, 9), 0.9)]))
    assert verdict.reason is Reason.IDENTIFIER and verdict.box == (30, 0, 109, 9)


@pytest.mark.parametrize(("text", "awaits"), [
    ("ID:", True), ("Referring:", True), ("DOB", True), ("Acc", True), ("AC", True),
    ("AP", False), ("PORTABLE", False), ("W:400", False), ("1234", False), ("A", False),
])
def test_a_label_at_a_line_end_awaits_its_value(text, awaits):
    # A colon, or a PHI field's label whole or cut short where the detector stopped.
    assert awaits_value(text) is awaits


def test_a_date_with_an_accent_misread_on_its_month_is_a_date():
    # JPEG noise over "Sep": read "5ép" (a digit and an accented letter).
    judge = PixelPhiJudge(gather(ct_with_nested_and_private()))
    words = [Word(text, (i * 40, 0, i * 40 + 30, 12), 0.9)
             for i, text in enumerate(["Study", "Date:", "1999", "5ép", "08"])]
    verdicts = judge.judge(TextLine((0, 0, 190, 12), " ".join(w.text for w in words), 0.9, words))
    assert [v.is_phi for v in verdicts[2:]] == [True, True, True]
    # One pattern's span, hidden as one block (a character lost between its words).
    date = verdicts[2:]
    assert date[0].box[2] == date[1].box[0] - 1 and date[1].box[2] == date[2].box[0] - 1


def test_a_value_is_hidden_down_to_the_foot_of_all_its_words(judge):
    # The "J" of "Jul" descends below "2001" and "05": the whole value is hidden to its foot.
    words = [Word("2012", (0, 0, 30, 12), 0.9), Word("Mar", (40, 2, 70, 15), 0.9),
             Word("01", (80, 0, 95, 11), 0.9), Word("W:400", (110, 0, 150, 12), 0.9)]
    verdicts = judge.judge(TextLine((0, 0, 150, 15), "2012 Mar 01 W:400", 0.9, words))
    assert [v.is_phi for v in verdicts] == [True, True, True, False]
    assert [v.box[1::2] for v in verdicts[:3]] == [(0, 15), (2, 15), (0, 15)]
    assert verdicts[3].box == (110, 0, 150, 12)


def _line(*texts: str) -> TextLine:
    words = [Word(text, (i * 40, 0, i * 40 + 30, 12), 0.9) for i, text in enumerate(texts)]
    return TextLine((0, 0, 40 * len(texts), 12), " ".join(texts), 0.9, words)


@pytest.mark.parametrize(("texts", "dates"), [
    (("Study", "Date:", "2013", "Sep"), [False, False, True, True]),  # the day under anatomy
    ((".2013", "Se:", "2"), [True, False, False]),  # "11.09" before where the line starts
    (("Se:", "2013"), [False, False]),  # a year alone, unled, is no fragment
    (("Study", "Date:", "2014", "Sep"), [False, False, False, False]),  # not the file's date
])
def test_a_date_read_cut_short_at_a_line_end_is_the_date(texts, dates):
    ds = ct_with_nested_and_private()
    ds.StudyDate = "20130911"
    judge = PixelPhiJudge(gather(ds))
    verdicts = judge.judge(_line(*texts))
    assert [v.reason is Reason.DATE for v in verdicts] == dates
