#!/usr/bin/env bash
# Regenerate the app's example clips (assets/examples/*.flac) with espeak-ng and sox.
# The clips are synthetic speech made by us; they are released under CC0 (see assets/README.md).
# Emotions are only *suggested* by pitch, speed and loudness: they are demo inputs, not ground truth.
# Usage: scripts/make_examples.sh   (needs: apt-get install espeak-ng sox)
set -euo pipefail
cd "$(dirname "$0")/.."
out=assets/examples
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name | voice | pitch (0-99) | speed (wpm) | amplitude (0-200) | text
make() {
  local name=$1 voice=$2 pitch=$3 speed=$4 amp=$5 text=$6
  espeak-ng -v "$voice" -p "$pitch" -s "$speed" -a "$amp" -w "$tmp/$name.wav" "$text"
  # 16 kHz mono 16-bit FLAC, like the corpora; trim leading/trailing silence, then 0.1 s padding.
  # -D (no dither) keeps the output byte-identical between runs; gain -3 leaves headroom for resampling.
  sox -D "$tmp/$name.wav" -r 16000 -c 1 -b 16 "$out/$name.flac" \
    gain -3 silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.1 0.1
}

make en_angry_kids       en+m3 20 230 200 "I told you a hundred times, put that down right now!"
make en_sad_letter       en+f2 10 110  60 "I read the letter again, and then I just sat there for a while."
make en_happy_news       en+f3 90 200 150 "We won! We actually won the whole thing, this is amazing!"
make en_neutral_meeting  en+m1 45 160 100 "The meeting starts at ten, in the room on the second floor."
make en_fear_noise       en+f4 85 240  90 "Did you hear that? Someone is downstairs. Please, call someone."
make de_neutral_tisch    de    45 160 100 "Das will sie am Mittwoch abgeben."
make de_angry_tuer       de+m3 25 230 200 "Mach sofort die Tür zu, ich habe es dir schon dreimal gesagt!"
# A long clip (about 10 s) for the segment timeline: calm first, then excited, then sad.
make en_long_story       en+m2 50 150 110 "It was an ordinary morning and nothing special was planned. \
Then the phone rang, and it was the best news we had heard in years! \
But by evening, the joy had faded, and the house felt very quiet again."

for f in "$out"/*.flac; do
  printf '%s\t%s s\n' "$f" "$(soxi -D "$f")"
done
