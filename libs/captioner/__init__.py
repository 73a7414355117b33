"""The default captioner: generated scenes, bilingual captions, teacher and distilled student."""
