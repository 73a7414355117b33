"""Greedy captioning with a PyTorch captioner (the reference the exported graphs must match)."""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast, VisionEncoderDecoderModel

from captioner.generated import Generated, confidence
from captioner.images import normalise
from captioner.modeling import MAX_CAPTION_TOKENS
from captioner.tokenizer import prompt_ids


@torch.no_grad()
def caption_batch(
    model: VisionEncoderDecoderModel,
    tokenizer: PreTrainedTokenizerFast,
    pixels: np.ndarray,
    languages: list[str],
    max_new_tokens: int = MAX_CAPTION_TOKENS,
) -> list[Generated]:
    """Greedy captions of uint8 images [B, 3, H, W], one language per image."""
    prompt = torch.tensor([prompt_ids(tokenizer, language) for language in languages])
    output = model.generate(
        pixel_values=torch.from_numpy(normalise(pixels)),
        decoder_input_ids=prompt,
        decoder_attention_mask=torch.ones_like(prompt),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        output_scores=True,
        return_dict_in_generate=True,
    )
    sequences = output.sequences[:, prompt.shape[1] :]
    log_probs = torch.stack([torch.log_softmax(step, dim=-1) for step in output.scores], dim=1)
    results = []
    for row, sequence in enumerate(sequences.tolist()):
        ids, scores = [], []
        for position, token in enumerate(sequence):
            scores.append(float(log_probs[row, position, token]))
            if token == tokenizer.eos_token_id:
                break
            ids.append(token)
        results.append(Generated(tokenizer.decode(ids, skip_special_tokens=True).strip(), tuple(ids), confidence(scores)))
    return results
