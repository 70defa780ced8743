"""A tiny token-classification model built by the tests: it tags one made-up word as a person.

No encoder layers: embeddings feed the classifier directly, so the weights below decide the
labels exactly, and loading and inference run through the real transformers code path.
"""

from __future__ import annotations

from pathlib import Path

MARKED_WORD = "zorblat"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", MARKED_WORD, "patient", "seen", "by",
         "for", "follow", "-", "up", "nodule", "pulmonary", "of", "the", "ct", "chest"]


def build_tiny_ner(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(VOCAB)},
                                  do_lower_case=True)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=0,
                        num_attention_heads=1, intermediate_size=8, max_position_embeddings=64,
                        num_labels=3, id2label={0: "O", 1: "B-PER", 2: "I-PER"},
                        label2id={"O": 0, "B-PER": 1, "I-PER": 2})
    model = BertForTokenClassification(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        embeddings = model.bert.embeddings
        embeddings.LayerNorm.weight.fill_(1.0)
        embeddings.word_embeddings.weight[:, 1] = 5.0  # every word leans to "O" ...
        marked = VOCAB.index(MARKED_WORD)
        embeddings.word_embeddings.weight[marked, 1] = 0.0
        embeddings.word_embeddings.weight[marked, 0] = 5.0  # ... except the marked one
        model.classifier.weight[0, 1] = 10.0  # dimension 1 → O
        model.classifier.weight[1, 0] = 10.0  # dimension 0 → B-PER
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
