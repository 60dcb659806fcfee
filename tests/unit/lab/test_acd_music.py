"""The sandbox queue's hold music: audible, and never a key to a tone reader."""
from harness.lab.acd import hold_music_frames
from harness.sip import dtmf


def test_hold_music_is_sound_and_no_key():
    frames = hold_music_frames()
    assert len(frames) == 200 and all(len(f) == 160 for f in frames)  # 4 s of 20 ms frames
    samples = [dtmf.ULAW_DECODE[b] for f in frames for b in f]
    rms = (sum(x * x for x in samples) / len(samples)) ** 0.5
    assert rms > 2000  # well above silence (0) and line noise
    reader = dtmf.ToneReader()
    for _ in range(3):  # twelve seconds of it
        for f in frames:
            reader.add_ulaw(f)
    reader.close()
    assert reader.heard == []
