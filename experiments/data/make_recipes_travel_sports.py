"""Writes recipes_travel_sports.jsonl beside it: 360 questions about recipes, travel and sports, a
distribution unlike the embedded smollm2 set's (experiments/own_data.py trains on one and the
other). Hand-written templates, each domain's own, over each domain's own fillers; every template
meets every filler once, so no prompt repeats. `python experiments/data/make_recipes_travel_sports.py`
rewrites the file identically."""

import json
import random
from pathlib import Path

DOMAINS = {
    "recipes": (
        ("How do I make {x} at home?", "What do I need to cook {x} for four people?",
         "Give me a quick weeknight recipe for {x}.", "How long does {x} take to cook?",
         "What can I serve with {x}?", "How do I keep {x} from going dry?"),
        ("lasagna", "chicken curry", "banana bread", "vegetable soup", "pancakes", "risotto",
         "beef stew", "falafel", "apple pie", "fried rice", "guacamole", "roast chicken",
         "lentil salad", "pad thai", "tomato sauce", "chocolate cake", "omelette", "paella",
         "fish tacos", "mushroom pasta"),
    ),
    "travel": (
        ("What should I see on a three-day trip to {x}?", "What is the best time of year to visit {x}?",
         "How do I get around {x} without a car?", "What should I pack for a week in {x}?",
         "Where should I stay in {x} on a small budget?", "What local food should I try in {x}?"),
        ("Lisbon", "Kyoto", "Iceland", "New York", "Marrakech", "the Scottish Highlands",
         "Buenos Aires", "Prague", "Bali", "Cape Town", "Vienna", "Patagonia", "Istanbul",
         "Vancouver", "Sicily", "Hanoi", "the Swiss Alps", "Mexico City", "Norway's fjords",
         "Edinburgh"),
    ),
    "sports": (
        ("How do I get better at {x}?", "What are the basic rules of {x}?",
         "What equipment do I need to start {x}?", "How should I warm up before {x}?",
         "How many times a week should a beginner practise {x}?",
         "What are common injuries in {x} and how do I avoid them?"),
        ("tennis", "basketball", "swimming", "rock climbing", "cycling", "volleyball", "golf",
         "table tennis", "rowing", "skiing", "badminton", "running a marathon", "surfing",
         "football", "yoga", "boxing", "cricket", "ice skating", "kayaking", "baseball"),
    ),
}


def prompts() -> list[dict]:
    rows = [{"prompt": template.format(x=filler), "domain": domain}
            for domain, (templates, fillers) in DOMAINS.items()
            for template in templates for filler in fillers]
    random.Random("recipes-travel-sports").shuffle(rows)
    return rows


if __name__ == "__main__":
    out = Path(__file__).with_name("recipes_travel_sports.jsonl")
    out.write_text("".join(json.dumps(row) + "\n" for row in prompts()))
