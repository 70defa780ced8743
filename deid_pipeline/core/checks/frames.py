"""Metadata tables (core.metadata) reshaped into the frames the expectation suites read.

The de-identified output is compared with its input file by file: `outputs_of` maps an input's
relative path to its output's (the batch's files table); quarantined inputs have no output.
Comparisons that must hold per file use keys `file<US>text`, so that one "value not in set"
expectation says "no output holds its own input's value".
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Collection, Iterator, Mapping, Sequence

import pandas as pd

from deid_pipeline.core.policy.annex_e import AnnexEProfile, attribute_type

KEY_SEPARATOR = "\x1f"  # ASCII unit separator: in no path and no DICOM text value
WORD = re.compile(r"\w+")
# Shorter IDs and names ("1", "LI") occur as whole values (instance numbers, codes) too often.
MIN_IDENTITY_CHARACTERS = 4
IDENTITY_KEYWORDS = frozenset({"PatientID", "OtherPatientIDs", "PatientName", "OtherPatientNames",
                               "PatientBirthName"})
DATE_VRS = frozenset({"DA", "DT"})
# Type 1 in every image IOD: file meta, SOP Common, General Study and General Series.
REQUIRED_TYPE_1 = ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID",
                   "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                   "Modality")
# Type 1 in the module that holds them wherever they occur: Frame of Reference, Image Pixel.
TYPE_1_WHEN_PRESENT = frozenset({"FrameOfReferenceUID", "SamplesPerPixel",
                                 "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
                                 "BitsStored", "HighBit", "PixelRepresentation"})


def keyed(*parts: str) -> str:
    return KEY_SEPARATOR.join(parts)


def tag_number(tag: str) -> int:
    """"(0008,0018)" -> 0x00080018."""
    return int(tag[1:5] + tag[6:10], 16)


def top_level_values(metadata: pd.DataFrame, keywords: Sequence[str],
                     files: Collection[str]) -> pd.DataFrame:
    """One row per file of `files`, a column per keyword: its value in the file meta or the
    dataset, missing where the file lacks the element or holds it empty."""
    top = metadata[(metadata["depth"] == 0) & metadata["keyword"].isin(keywords)]
    wide = (top.drop_duplicates(["file", "keyword"])
            .pivot(index="file", columns="keyword", values="value")
            .reindex(index=pd.Index(list(files), name="file"), columns=list(keywords))
            .astype(object))
    return wide.mask(wide.eq("")).reset_index()


def element_values(metadata: pd.DataFrame) -> pd.DataFrame:
    """One row per value of an element (multi-values split at their backslashes); elements
    without a value, or with an empty one, left out."""
    rows = metadata[metadata["value"].notna()]
    rows = rows.assign(value=rows["value"].astype(str).str.split("\\", regex=False))
    rows = rows.explode("value")
    return rows[rows["value"].str.strip() != ""].reset_index(drop=True)


def identity_form(text: str) -> str:
    """A value as the sorted set of its upper-case words: "DOE^JANE", "Jane Doe" and "DOE, JANE"
    read alike, as do "PAT-001" and "001 pat"."""
    return " ".join(sorted(set(WORD.findall(text.upper()))))


# Files share most of their values (codes, descriptions, sizes): their forms are found once.
@lru_cache(maxsize=2**16)
def _forms_of_value(value: str) -> tuple[str, ...]:
    """A value whole (each "="-separated group of a person name apart), then word by word."""
    return (*(identity_form(group) for group in value.split("=")),
            *set(WORD.findall(value.upper())))


def original_identity_keys(incoming: pd.DataFrame, outputs_of: Mapping[str, str]) -> set[str]:
    """`output<US>form` for each Patient ID and patient name of each input with an output."""
    rows = element_values(incoming[incoming["keyword"].isin(IDENTITY_KEYWORDS)])
    keys = set()
    for source, value in zip(rows["file"], rows["value"], strict=True):
        output = outputs_of.get(source)
        if output is None:
            continue
        for group in value.split("="):
            form = identity_form(group)
            if len(form.replace(" ", "")) >= MIN_IDENTITY_CHARACTERS:
                keys.add(keyed(output, form))
    return keys


def output_identity_keys(output: pd.DataFrame) -> pd.DataFrame:
    """Column `identity_key`: `file<US>form` for every value of every output element and every
    part of the output's path, whole and word by word."""
    values = element_values(output)
    texts = list(zip(values["file"], values["value"], strict=True))
    for file in output["file"].unique():
        texts.extend((file, part.removesuffix(".dcm")) for part in str(file).split("/"))
    keys = {keyed(file, form) for file, text in texts for form in _forms_of_value(text)}
    return pd.DataFrame({"identity_key": sorted(keys)}, dtype=object)


def _dated(metadata: pd.DataFrame) -> pd.DataFrame:
    return metadata[metadata["vr"].isin(DATE_VRS) & metadata["value"].notna()
                    & (metadata["value"].astype(str).str.strip() != "")]


def original_date_keys(incoming: pd.DataFrame, outputs_of: Mapping[str, str]) -> set[str]:
    """`output<US>element path<US>date` for each date and date-time of each input."""
    dated = _dated(incoming)
    return {keyed(outputs_of[source], path, value)
            for source, path, value in zip(dated["file"], dated["path"], dated["value"],
                                           strict=True)
            if source in outputs_of}


def output_date_keys(output: pd.DataFrame) -> pd.DataFrame:
    """Column `dated_element`: `file<US>element path<US>date` for each date of each output."""
    dated = _dated(output)
    keys = [keyed(*row) for row in zip(dated["file"], dated["path"], dated["value"], strict=True)]
    return pd.DataFrame({"dated_element": keys}, dtype=object)


def uid_values(metadata: pd.DataFrame) -> pd.DataFrame:
    """One row per UID value (file, path, tag, keyword, value)."""
    return element_values(metadata[metadata["vr"] == "UI"])[
        ["file", "path", "tag", "keyword", "value"]].astype(object)


def replaced_uids(uids: pd.DataFrame, profile: AnnexEProfile,
                  options: Collection[str]) -> pd.DataFrame:
    """The UIDs of elements that Annex E replaces (action U) under the policy's options."""
    replaced = {tag for tag in uids["tag"].unique()
                if profile.action_for(tag_number(tag), options) == "U"}
    return uids[uids["tag"].isin(replaced)].reset_index(drop=True)


def private_blocks(metadata: pd.DataFrame) -> pd.DataFrame:
    """Column `private_block`: for each element in an odd group, its block's private creator (a
    creator element's own value); "" where the block has no creator."""
    private = metadata[metadata["tag"].str[4].isin(list("13579BDF"))]
    is_creator = private["tag"].map(lambda tag: 0x10 <= (tag_number(tag) & 0xFFFF) <= 0xFF)
    block = private["private_creator"].where(~is_creator, private["value"])
    return pd.DataFrame({"file": private["file"], "tag": private["tag"],
                         "private_block": block.fillna("").astype(object)}).reset_index(drop=True)


def type1_lengths(metadata: pd.DataFrame, files: Collection[str]) -> pd.DataFrame:
    """(file, keyword, length) of each top-level type 1 element: the required ones of each of
    `files` (length missing where absent, or where the file could not be read), and those type 1
    where present: the Image Pixel and Frame of Reference elements and those that
    attribute_types.yaml makes 1 or 1C in the file's IOD."""
    top = metadata[metadata["depth"] == 0]
    sop_class = dict(zip(top.loc[top["keyword"] == "SOPClassUID", "file"],
                         top.loc[top["keyword"] == "SOPClassUID", "value"], strict=True))
    type1 = [keyword not in REQUIRED_TYPE_1 and (
                 keyword in TYPE_1_WHEN_PRESENT
                 or attribute_type(keyword, str(sop_class.get(file, ""))) in ("1", "1C"))
             for file, keyword in zip(top["file"], top["keyword"], strict=True)]
    present = top.loc[type1, ["file", "keyword", "length"]]
    required = pd.MultiIndex.from_product([sorted(files), REQUIRED_TYPE_1],
                                          names=["file", "keyword"])
    lengths = (top[top["keyword"].isin(REQUIRED_TYPE_1)].drop_duplicates(["file", "keyword"])
               .set_index(["file", "keyword"])["length"].reindex(required).reset_index())
    return pd.concat([lengths, present], ignore_index=True).astype({"length": "float64"})

