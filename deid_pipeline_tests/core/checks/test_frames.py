import pandas as pd
from pydicom.dataset import Dataset

from deid_pipeline.core.checks import frames
from deid_pipeline.core.metadata import iter_element_rows, metadata_frame
from deid_pipeline.core.policy.annex_e import load_profile
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private


def table(*files: tuple[str, Dataset]) -> pd.DataFrame:
    return metadata_frame([row for name, ds in files for row in iter_element_rows(ds, name)])


def dataset(**elements) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def test_identity_form_ignores_case_spacing_punctuation_and_name_part_order():
    forms = {frames.identity_form(text) for text in ("DOE^JANE", "Jane Doe", "DOE, JANE ")}
    assert forms == {"DOE JANE"}
    assert frames.identity_form("PAT-001") == frames.identity_form("001 pat")


def test_identity_hits_are_per_file_and_cover_words_and_the_output_path():
    incoming = table(("in/a.dcm", dataset(PatientID="MRN12345", PatientName="DOE^JANE")),
                     ("in/b.dcm", dataset(PatientID="MRN99999", PatientName="ROE^RICHARD")))
    originals = frames.original_identity_keys(incoming, {"in/a.dcm": "A/a.dcm",
                                                         "in/b.dcm": "B/b.dcm"})
    output = table(("A/a.dcm", dataset(PatientComments="seen by Richard Roe")),
                   ("B/b.dcm", dataset(PatientComments="Roe, Richard", StudyID="x MRN99999")),
                   ("MRN12345/c.dcm", dataset(PatientID="P1")))
    keys = set(frames.output_identity_keys(output)["identity_key"])

    hits = {key.split(frames.KEY_SEPARATOR)[0] for key in keys & originals}
    # a.dcm quotes b's patient, which is not a's own identity; b quotes its own, twice.
    assert hits == {"B/b.dcm"}
    originals_of_c = frames.original_identity_keys(incoming, {"in/a.dcm": "MRN12345/c.dcm"})
    assert keys & originals_of_c == {frames.keyed("MRN12345/c.dcm", "MRN12345")}


def test_short_identities_are_not_looked_for():
    incoming = table(("a.dcm", dataset(PatientID="7", PatientName="LI")))
    assert frames.original_identity_keys(incoming, {"a.dcm": "a.dcm"}) == set()


def test_element_values_split_multi_values_and_drop_empty_ones():
    metadata = table(("a.dcm", dataset(OtherPatientIDs=["ID1", "ID2"], PatientName="")))
    values = frames.element_values(metadata)
    assert sorted(values["value"]) == ["ID1", "ID2"]


def test_date_keys_pair_each_output_date_with_its_input_element():
    incoming = table(("in.dcm", dataset(StudyDate="20120103", ContentDate="20120103",
                                        PatientBirthDate="")))
    output = table(("out.dcm", dataset(StudyDate="20100611", ContentDate="20120103")))
    originals = frames.original_date_keys(incoming, {"in.dcm": "out.dcm"})
    unchanged = set(frames.output_date_keys(output)["dated_element"]) & originals
    assert unchanged == {frames.keyed("out.dcm", "(0008,0023)", "20120103")}  # ContentDate


def test_private_blocks_name_the_creator_and_flag_orphans():
    ds = ct_with_nested_and_private()
    ds.add_new(0x00131010, "LO", "no creator for this block")
    blocks = frames.private_blocks(table(("a.dcm", ds))).set_index("tag")["private_block"]
    assert blocks["(0011,0010)"] == "ACME_PATIENT_01"  # the creator element itself
    assert blocks["(0011,1010)"] == "ACME_PATIENT_01"
    assert blocks["(0013,1010)"] == ""


def test_replaced_uids_are_those_annex_e_replaces():
    uids = frames.uid_values(table(("a.dcm", ct_with_nested_and_private())))
    replaced = frames.replaced_uids(uids, load_profile(), ["clean_descriptors"])
    assert set(replaced["keyword"]) == {"MediaStorageSOPInstanceUID", "SOPInstanceUID",
                                        "StudyInstanceUID", "SeriesInstanceUID"}
    assert frames.replaced_uids(uids, load_profile(), ["retain_uids"]).empty


def test_type1_lengths_report_missing_required_and_empty_present_elements():
    ds = ct_with_nested_and_private()
    ds.Modality = ""
    ds.Rows = None
    del ds.SeriesInstanceUID
    lengths = frames.type1_lengths(table(("a.dcm", ds)), ["a.dcm", "unreadable.dcm"])
    by_key = lengths.set_index(["file", "keyword"])["length"]
    assert by_key[("a.dcm", "Modality")] == 0
    assert by_key[("a.dcm", "Rows")] == 0
    assert pd.isna(by_key[("a.dcm", "SeriesInstanceUID")])
    assert by_key[("a.dcm", "Columns")] == 1  # "4" as text
    assert by_key.loc["unreadable.dcm"].isna().all()
    assert len(by_key.loc["unreadable.dcm"]) == len(frames.REQUIRED_TYPE_1)
