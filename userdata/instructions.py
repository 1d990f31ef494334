"""The `smollm2` prompt set: instructions of many kinds, composed offline and deterministically.

A draft learns the target's answers to the prompts it trains on, so the set must be as varied as a
chat model's traffic, not one phrasing repeated: five kinds of request (about a subject, how to do
a task, a comparison, something to write, an everyday question), each with its own phrasings and
its own fillers. Every composition belongs to one split (every fifth is `test`), so the test
prompts are phrasings and subjects combined in ways training never saw; each split is shuffled with
a fixed seed so that any prefix mixes kinds, phrasings and subjects.
"""

import random

SUBJECT_TEMPLATES = (
    "Explain {x} to a curious ten-year-old.",
    "Write a short paragraph about {x}.",
    "What are three interesting facts about {x}?",
    "Summarize the history of {x} in a few sentences.",
    "What are the pros and cons of {x}?",
    "How would you describe {x} to someone who has never heard of it?",
    "List five common misconceptions about {x}.",
    "Why is {x} important today?",
    "What questions should a beginner ask about {x}?",
    "Give a one-sentence definition of {x}, then expand on it.",
    "What skills does someone need to work with {x}?",
    "What might {x} look like in fifty years?",
    "What are the main ideas behind {x}?",
    "Teach me the basics of {x} in five bullet points.",
    "What is the most surprising thing about {x}?",
    "Give me a study plan for learning about {x} in one week.",
    "What are some good books or resources about {x}?",
    "Explain {x} using an analogy.",
)
SUBJECTS = (
    "photosynthesis", "the water cycle", "volcanoes", "black holes", "the human heart",
    "machine learning", "recycling", "the Roman Empire", "honeybees", "electric cars",
    "the internet", "gardening", "chess", "the moon landing", "climate change", "healthy sleep",
    "bread baking", "rainbows", "the stock market", "renewable energy", "dinosaurs",
    "public libraries", "ocean tides", "vaccines", "the guitar", "mountain hiking", "bicycles",
    "coffee", "the solar system", "learning a new language", "earthquakes", "the printing press",
    "jazz music", "compound interest", "the immune system", "coral reefs", "democracy",
    "nuclear fusion", "origami", "the Silk Road", "antibiotics", "migratory birds", "glaciers",
    "the theory of evolution", "cryptography", "urban planning", "the Olympic Games",
    "impressionist painting", "the human brain", "solar panels", "fermentation",
    "the French Revolution", "quantum computing", "rainforests", "supply and demand",
    "marathon running", "the periodic table", "meditation", "3D printing", "wolves",
    "the Great Wall of China", "plate tectonics", "social media", "vitamins", "tea ceremonies",
    "the Renaissance", "wind turbines", "mushrooms", "the speed of light", "minimalism",
    "ancient Egypt", "volunteering", "probability", "sharks", "composting", "the violin",
    "space telescopes", "inflation", "sign language", "robots in factories", "the Amazon river",
    "board games", "personal budgeting", "lighthouses", "cheese making",
)
TASK_TEMPLATES = (
    "How do I {x}?",
    "Give me a step-by-step guide to {x}.",
    "What is the easiest way to {x}?",
    "I want to {x}. Where should I start?",
    "What mistakes should I avoid when I {x}?",
    "Can you give me some tips to {x}?",
    "What do I need before I {x}?",
)
TASKS = (
    "fix a flat bicycle tire", "make a simple budget", "start running", "plant tomatoes",
    "write a cover letter", "learn to touch type", "cook rice on the stove", "clean a laptop keyboard",
    "prepare for a job interview", "organize my closet", "start a podcast", "bake sourdough bread",
    "improve my handwriting", "keep a houseplant alive", "train a puppy to sit",
    "write a good essay introduction", "save money on groceries", "learn to juggle",
    "set up a home network", "make a paper airplane", "brew good coffee at home",
    "memorize a speech", "plan a road trip", "get better at public speaking",
    "build a simple website", "fall asleep faster", "start journaling", "paint a room",
    "back up my photos", "make friends in a new city", "learn basic chess openings",
    "reduce screen time", "sharpen a kitchen knife", "write a thank-you note",
    "study for a math exam", "choose a good password", "wash a wool sweater", "start meditating",
    "make homemade pizza", "prepare an emergency kit",
)
COMPARE_TEMPLATES = (
    "What is the difference between {a} and {b}?",
    "Compare {a} and {b} in a short table.",
    "Which is better for a beginner, {a} or {b}? Explain why.",
    "Write a short paragraph comparing {a} with {b}.",
    "What do {a} and {b} have in common?",
)
PAIRS = (
    ("cats", "dogs"), ("tea", "coffee"), ("trains", "planes"), ("books", "movies"),
    ("weather", "climate"), ("a virus", "a bacterium"), ("renting", "buying a home"),
    ("Python", "JavaScript"), ("running", "swimming"), ("the sun", "the moon"),
    ("email", "letters"), ("a lake", "a sea"), ("solar power", "wind power"),
    ("city life", "country life"), ("a crocodile", "an alligator"), ("baking", "frying"),
    ("a violin", "a cello"), ("stocks", "bonds"), ("a comet", "an asteroid"),
    ("reading on paper", "reading on a screen"), ("a hurricane", "a tornado"),
    ("butter", "olive oil"), ("classical music", "pop music"), ("walking", "cycling"),
    ("a wolf", "a fox"), ("spring", "autumn"), ("chess", "checkers"), ("a laptop", "a tablet"),
)
WRITING_TEMPLATES = (
    "Write a haiku about {x}.",
    "Tell a short story that involves {x}.",
    "Write a friendly email inviting a colleague to talk about {x}.",
    "Write a short dialogue between two friends discussing {x}.",
    "Write a limerick about {x}.",
    "Write a product description for {x}.",
    "Write a short speech for a birthday party that mentions {x}.",
    "Describe a typical day for a person whose job involves {x}.",
    "Write a diary entry from the point of view of {x}.",
)
WRITING_SUBJECTS = (
    "a lost umbrella", "the first snow of winter", "a lighthouse keeper", "a robot learning to cook",
    "an old bicycle", "a cat who loves boxes", "a rainy Monday", "a village bakery",
    "a message in a bottle", "a dragon who is afraid of heights", "a tiny garden on a balcony",
    "a train journey at night", "a kite", "a forgotten library book", "a brave little turtle",
    "a street musician", "the last day of summer", "a broken clock", "a mountain cabin",
    "a friendly ghost", "a new pair of shoes", "a busy airport", "a paper boat",
    "a school science fair", "an owl", "a secret recipe", "a hot air balloon", "a sunflower",
)
QUESTIONS = (
    "Why is the sky blue?", "How many bones are in the human body?",
    "Why do we have leap years?", "How does a refrigerator keep food cold?",
    "What causes thunder?", "Why do onions make you cry?", "How do airplanes stay in the air?",
    "What is a good name for a goldfish?", "Why do leaves change color in autumn?",
    "How long does it take light from the sun to reach Earth?", "What makes popcorn pop?",
    "Why do cats purr?", "How does a microwave oven heat food?",
    "What is the tallest mountain in the world?", "Why is the ocean salty?",
    "How do vaccines train the immune system?", "Why do we yawn?",
    "What is the capital of Australia?", "How do bees make honey?",
    "Why does ice float on water?", "What should I eat before a long run?",
    "How can I stay focused while studying?", "What is a black hole made of?",
    "Why do some people get seasick?", "How do solar panels make electricity?",
    "What is the difference between a hurricane and a typhoon?", "Why do stars twinkle?",
    "How do I know if an egg is fresh?", "What is the best way to learn vocabulary?",
    "Why do we need sleep?", "How do magnets work?", "What are clouds made of?",
    "Can you suggest a healthy breakfast?", "What is a good hobby to pick up in winter?",
    "How do noise-cancelling headphones work?", "Why do our fingers wrinkle in water?",
)


def instruction_prompts(split: str) -> list[str]:
    """Every composition of `split` ('train' or 'test'), shuffled with a fixed seed."""
    composed = [t.format(x=x) for x in SUBJECTS for t in SUBJECT_TEMPLATES]
    composed += [t.format(x=x) for x in TASKS for t in TASK_TEMPLATES]
    composed += [t.format(a=a, b=b) for a, b in PAIRS for t in COMPARE_TEMPLATES]
    composed += [t.format(x=x) for x in WRITING_SUBJECTS for t in WRITING_TEMPLATES]
    composed += list(QUESTIONS)
    chosen = [text for i, text in enumerate(composed) if (i % 5 == 4) == (split == "test")]
    random.Random(f"smollm2-prompts-{split}").shuffle(chosen)
    return chosen
