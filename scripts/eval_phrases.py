"""Phrase spotting on real voices through a telephone channel: recall and false alarms of the rules' matching.

    python scripts/eval_phrases.py [--limit N] [--config FILE] [--fuzzy-as required|banned] [--json] [--show-misses]

The utterances are real Mandarin recordings with reference transcripts: the 50 AISHELL-1
utterances of ../shared/realdata/zh-speech-aishell (one speaker, read news) and the clips
of ../shared/realdata/zh-speech that have a reference. Each goes through a telephone line
(8 kHz, 300-3400 Hz band-pass, G.711 mu-law, a little line noise), is put on the agent
channel of a stereo call and transcribed by qa-audio's own pipeline (VAD, Whisper), then
searched with the same ``PhraseMatcher`` the rules use, for:

* **positives**: words of 2-4 characters that were said (jieba words of the reference);
* **near misses**: a positive with one character (or, for 3-4 characters, two) replaced by a
  character of another syllable, so one or two syllables away from what was said;
* **shared syllables**: other utterances' positives that share a syllable with a positive of
  this one (the hardest real confusions: 第三位 in 三千一百名);
* **unrelated**: every other utterance's positives.

A keyword is "found" when the matcher reports a hit for it anywhere in the utterance's
transcript. Recall is over positives; a false alarm is a hit for a negative.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import butter, sosfilt

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "realdata"
sys.path.insert(0, str(ROOT))

RATE_HZ = 8000
ZH_SPEECH_REFERENCES = {          # ../shared/realdata/INDEX.md
    "aishell-BAC009S0724W0121.wav": "广州市房地产中介协会分析",
    "BAC009S0764W0121.wav": "甚至出现交易几乎停滞的情况",
    "BAC009S0764W0122.wav": "一二线城市虽然也处于调整中",
    "asr_example_short.wav": "欢迎大家来体验达摩院推出的语音识别模型",
    "zh.wav": "我认为跑步最重要的就是给我带来了身体健康",
}
STOP = {"我们", "他们", "这个", "那个", "就是", "以及", "已经", "但是", "因为", "所以", "可以", "没有", "一个"}


@dataclasses.dataclass(frozen=True)
class _Verified:
    matched: str
    how: str


@dataclasses.dataclass(frozen=True)
class Utterance:
    name: str
    reference: str
    audio: np.ndarray          # 8 kHz, through the telephone line


def references() -> list[tuple[Path, str]]:
    folder = SHARED / "zh-speech-aishell"
    if not (folder / "transcripts.tsv").is_file():
        raise SystemExit(f"{folder} is missing: this evaluation needs ../shared beside the checkout")
    out = []
    for line in (folder / "transcripts.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        ident, here, _duration, text = line.split("\t")[:4]
        if here == "yes":
            out.append((folder / f"{ident}.flac", text.strip()))
    out += [(SHARED / "zh-speech" / name, text) for name, text in ZH_SPEECH_REFERENCES.items()]
    return out


def telephone(samples: np.ndarray, rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """8 kHz, 300-3400 Hz, G.711 mu-law, line noise about 35 dB under the speech."""
    x = soxr.resample(samples, rate_hz, RATE_HZ) if rate_hz != RATE_HZ else samples
    x = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=RATE_HZ, output="sos"), x)
    x = 0.3 * x / (np.max(np.abs(x)) + 1e-9)
    x = x + rng.normal(0, np.sqrt(np.mean(x ** 2)) * 10 ** (-35 / 20), len(x))
    buffer = io.BytesIO()
    sf.write(buffer, x, RATE_HZ, format="WAV", subtype="ULAW")
    buffer.seek(0)
    return sf.read(buffer, dtype="float32")[0]


def load(limit: int | None, seed: int) -> list[Utterance]:
    rng = np.random.default_rng(seed)
    out = []
    for path, text in references()[:limit]:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        out.append(Utterance(path.stem, text, telephone(data[:, 0], rate, rng)))
    return out


def keywords(text: str, tokenizer) -> list[str]:
    words = [w for w in tokenizer.lcut(text) if 2 <= len(w) <= 4 and w not in STOP and w.isalnum()]
    return list(dict.fromkeys(words))


def near_misses(word: str, pool: str, syllable, rng: np.random.Generator) -> list[str]:
    """The word with one (and, for 3+ characters, two) characters replaced by characters of other syllables."""
    chars = [c for c in dict.fromkeys(pool) if c.isalnum()]
    out = []
    for changes in ((1, 2) if len(word) >= 3 else (1,)):
        positions = rng.choice(len(word), size=changes, replace=False)
        new = list(word)
        for p in positions:
            options = [c for c in chars if syllable(c) != syllable(word[p])]
            new[p] = options[int(rng.integers(len(options)))]
        out.append("".join(new))
    return out


def transcribe(utterances: list[Utterance], scorer) -> dict[str, list]:
    """Each utterance on the agent channel of a stereo call, through the pipeline's VAD and Whisper."""
    from qa_audio.signal.audio import load_audio

    out: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for u in utterances:
            lead = np.zeros(int(0.8 * RATE_HZ), dtype=np.float32)
            agent = np.concatenate([lead, u.audio, lead])
            customer = np.random.default_rng(0).normal(0, 1e-4, len(agent)).astype(np.float32)
            path = Path(tmp) / f"{u.name}.wav"
            sf.write(path, np.stack([agent, customer], axis=1), RATE_HZ, subtype="PCM_16")
            analysis = scorer.analyze(load_audio(path))
            out[u.name] = [x for x in analysis.utterances if x.channel == "agent"]
    return out


def evaluate(*, limit: int | None = None, config_path: str | None = None, seed: int = 14,
             recheck: bool = True, sample_per_kind: int = 6, required: bool = True) -> dict:
    import jieba
    from pypinyin import Style, lazy_pinyin

    from qa_audio.config import Lexicon, LexiconEntry, load_config
    from qa_audio.judge.rules import PhraseMatcher
    from qa_audio.pipeline import Scorer

    rng = np.random.default_rng(seed)
    config = load_config(config_path)
    utterances = load(limit, seed)
    tokenizer = jieba.Tokenizer()

    def syllable(ch: str) -> str:
        return lazy_pinyin(ch, style=Style.NORMAL)[0]

    positives = {u.name: keywords(u.reference, tokenizer) for u in utterances}
    every_text = "".join(u.reference for u in utterances)
    probes: dict[str, list[tuple[str, str]]] = {}          # utterance → (kind, keyword)
    for u in utterances:
        said = positives[u.name]  # a list: a set's order changes with the hash seed, and the draws with it
        mine = {syllable(c) for w in said for c in w}
        items = [("positive", w) for w in said]
        for w in said:
            items += [("near_miss", m) for m in near_misses(w, every_text, syllable, rng) if m not in u.reference]
        for other in utterances:
            if other.name == u.name:
                continue
            for w in positives[other.name]:
                if w in u.reference:
                    continue
                kind = "shared_syllable" if {syllable(c) for c in w} & mine else "unrelated"
                items.append((kind, w))
        probes[u.name] = list(dict.fromkeys(items))
    phrases = sorted({w for items in probes.values() for _, w in items})
    names = {w: f"kw{i:04d}" for i, w in enumerate(phrases)}
    lexicons = {names[w]: Lexicon(names[w], "<eval>", (LexiconEntry(w, None, 1),)) for w in phrases}
    matcher = PhraseMatcher(dataclasses.replace(config, lexicons=lexicons))
    scorer = Scorer(config)
    heard = transcribe(utterances, scorer)

    counts = {k: [0, 0] for k in ("positive", "near_miss", "shared_syllable", "unrelated")}  # [hits, tries]
    base = {k: [0, 0] for k in counts}
    misses, alarms = [], []
    checked, recheck_s = 0, 0.0
    sampled = {k: [0, 0] for k in ("shared_syllable", "unrelated")}  # [false alarms, tries] after re-checking
    pick = np.random.default_rng(seed + 1)
    for u in utterances:
        prepared = [matcher.prepare(x) for x in heard[u.name]]
        examined = None
        # every positive and near miss is re-checked; of the (many) other keywords, a seeded sample
        chosen = set()
        for kind in sampled:
            pool = [i for i, (k, _) in enumerate(probes[u.name]) if k == kind]
            chosen |= {pool[int(j)] for j in pick.permutation(len(pool))[:sample_per_kind]}
        for i, (kind, word) in enumerate(probes[u.name]):
            hit = next((h for p in prepared for h in matcher.find(p, names[word])), None)
            base[kind][0] += hit is not None
            base[kind][1] += 1
            # every fuzzy hit is re-checked, as the rules do; of the other keywords' misses, a sample
            ask = kind in ("positive", "near_miss") or i in chosen or (hit is not None and hit.how == "fuzzy")
            if recheck and ask and (hit is None or hit.how == "fuzzy"):
                # what a phrase rule does before deciding: the audio is asked (qa_audio.judge.recheck)
                from qa_audio.judge.recheck import heard_exactly

                started = time.perf_counter()
                if examined is None:
                    examined = scorer.checker.open(soxr.resample(u.audio, RATE_HZ, 16000).astype(np.float32))

                def found(text, phrase, lexicon=names[word]):
                    return heard_exactly(matcher, lexicon, text, phrase)

                if hit is None:
                    verdict = examined.missing([word], found=found)[3]
                    hit = _Verified(word, "verified") if verdict == "confirmed" else None
                else:
                    verdict = examined.fuzzy(word, found=found, required=required)[2]
                    hit = hit if verdict == "confirmed" else None
                checked += 1
                recheck_s += time.perf_counter() - started
            if kind in sampled and i in chosen:
                sampled[kind][0] += hit is not None
                sampled[kind][1] += 1
            counts[kind][0] += hit is not None
            counts[kind][1] += 1
            if kind == "positive" and hit is None:
                misses.append(f"{u.name}: {word} not found in {''.join(x.text for x in heard[u.name])!r}")
            if kind != "positive" and hit is not None:
                alarms.append(f"{u.name}: {kind} {word} found as {hit.matched!r} ({hit.how})")
    negatives = [counts[k] for k in ("near_miss", "shared_syllable", "unrelated")]
    base_negatives = [base[k] for k in ("near_miss", "shared_syllable", "unrelated")]
    return {
        "transcript_only": {
            "recall": base["positive"][0] / max(base["positive"][1], 1),
            "false_alarms": {k: base[k][0] / max(base[k][1], 1) for k in ("near_miss", "shared_syllable", "unrelated")},
            "false_alarm_overall": sum(h for h, _ in base_negatives) / max(sum(n for _, n in base_negatives), 1),
        },
        "fuzzy_hits_as": "required" if required else "banned",
        "rechecked": checked,
        "recheck_s": round(recheck_s, 1),
        "sampled_false_alarms": {k: {"rate": h / max(n, 1), "tries": n} for k, (h, n) in sampled.items()},
        "utterances": len(utterances),
        "recall": counts["positive"][0] / max(counts["positive"][1], 1),
        "positives": counts["positive"][1],
        "false_alarms": {k: counts[k][0] / max(counts[k][1], 1) for k in ("near_miss", "shared_syllable", "unrelated")},
        "false_alarm_overall": sum(h for h, _ in negatives) / max(sum(n for _, n in negatives), 1),
        "negatives": {k: counts[k][1] for k in ("near_miss", "shared_syllable", "unrelated")},
        "transcripts": {
            u.name: {"reference": u.reference, "heard": "".join(x.text for x in heard[u.name])} for u in utterances
        },
        "misses": misses,
        "alarms": alarms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int)
    parser.add_argument("--config")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument(
        "--no-recheck", action="store_true", help="the transcript alone, as before qa_audio.judge.recheck"
    )
    parser.add_argument(
        "--fuzzy-as", choices=("required", "banned"), default="required",
        help="re-check fuzzy hits as a required phrase's are (substitution, then a hotword decode) or as a "
             "banned phrase's (a hotword decode only)")
    args = parser.parse_args()
    report = evaluate(limit=args.limit, config_path=args.config, recheck=not args.no_recheck,
                      required=args.fuzzy_as == "required")
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0
    fa = report["false_alarms"]
    print(f"{report['utterances']} real utterances through a telephone channel")
    t = report["transcript_only"]
    print(
        f"transcript only: recall {t['recall']:.1%}; false alarms near misses {t['false_alarms']['near_miss']:.2%}, "
        f"shared {t['false_alarms']['shared_syllable']:.2%}, unrelated {t['false_alarms']['unrelated']:.2%}, "
        f"overall {t['false_alarm_overall']:.2%}"
    )
    print(f"re-checked against the audio: {report['rechecked']} decisions in {report['recheck_s']} s "
          f"(fuzzy hits re-checked as a {report['fuzzy_hits_as']} phrase's)")
    for kind, v in report["sampled_false_alarms"].items():
        print(f"  {kind} keywords re-checked (seeded sample): false alarms {v['rate']:.2%} of {v['tries']}")
    print(f"recall {report['recall']:.1%} of {report['positives']} phrases said")
    print(
        f"false alarms: near misses {fa['near_miss']:.2%} of {report['negatives']['near_miss']}, "
        f"shared syllables {fa['shared_syllable']:.2%} of {report['negatives']['shared_syllable']}, "
        f"unrelated {fa['unrelated']:.2%} of {report['negatives']['unrelated']}; "
        f"overall {report['false_alarm_overall']:.2%}"
    )
    if args.show_misses:
        for line in report["misses"] + report["alarms"]:
            print("  ", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
