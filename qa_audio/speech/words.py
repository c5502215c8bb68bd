"""Words and utterances: what transcription produces and every later stage reads (no heavy imports)."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Utterance", "Word"]


@dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    text: str
    probability: float

    def to_list(self) -> list:
        """The stored form (the JSON edge): ``[start_s, end_s, text, probability]``."""
        return [self.start_s, self.end_s, self.text, self.probability]

    @classmethod
    def from_list(cls, item: list | tuple) -> Word:
        start_s, end_s, text, probability = item
        return cls(float(start_s), float(end_s), str(text), float(probability))


@dataclass(frozen=True)
class Utterance:
    channel: str
    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...]

    def to_dict(self, *, words: bool = False) -> dict:
        """The contract's transcript line; ``words=True`` keeps exact times and word probabilities too."""
        if words:
            return {"channel": self.channel, "start_s": self.start_s, "end_s": self.end_s, "text": self.text,
                    "words": [w.to_list() for w in self.words]}
        return {"channel": self.channel, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "text": self.text}

    @classmethod
    def from_dict(cls, data: dict) -> Utterance:
        """The inverse of ``to_dict(words=True)`` (used to rescore stored transcripts)."""
        words = tuple(Word.from_list(w) for w in data.get("words", ()))
        return cls(data["channel"], float(data["start_s"]), float(data["end_s"]), data["text"], words)
