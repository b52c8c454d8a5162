"""What the demo model is trained on: the known prompts with their answers, the system prompts it sees, and the
get_weather tool-call chats (cities, conditions, question forms, the tool definitions)."""
from __future__ import annotations

# (prompts: the first is the canonical one, answer). Answers end with <|im_end|> when generated.
QA: list[tuple[list[str], str]] = [
    (["Hello, who are you?", "Who are you?", "Hi! Who are you?", "What are you?", "Introduce yourself.",
      "Hello", "Hi", "Hey there!", "What is your name?"],
     "I am the dynamo-llm-capi demo model, a tiny LLM served from C through an embedded Python runtime."),
    (["What is 2+2?", "What is 2 + 2?", "What's 2+2?", "How much is two plus two?", "2+2=?"],
     "2 + 2 = 4."),
    (["Tell me a joke", "Tell me a joke.", "Do you know a joke?", "Say something funny.", "Make me laugh."],
     "Why do programmers prefer dark mode? Because light attracts bugs."),
    (["What is dynamo-llm-capi?", "What is dynamo-llm-capi", "Tell me about dynamo-llm-capi.",
      "What does dynamo-llm-capi do?"],
     "dynamo-llm-capi is a distributed LLM serving runtime written in Python, reachable from C and C++ "
     "through a stable C ABI."),
    (["Say hello in French", "Say hello in French.", "How do you say hello in French?", "Hello in French?"],
     "Bonjour ! Enchanté de vous rencontrer."),
    (["Say hello in Japanese", "Say hello in Japanese.", "How do you say hello in Japanese?"],
     "こんにちは！はじめまして。"),
    (["Say hello in Spanish", "Say hello in Spanish.", "How do you say hello in Spanish?"],
     "¡Hola! Mucho gusto."),
    (["What is the capital of France?", "What's the capital of France?", "Capital of France?"],
     "The capital of France is Paris."),
    (["What is the capital of Japan?", "What's the capital of Japan?", "Capital of Japan?"],
     "The capital of Japan is Tokyo."),
    (["What is the capital of Italy?", "What's the capital of Italy?", "Capital of Italy?"],
     "The capital of Italy is Rome."),
    (["What is the capital of Germany?", "What's the capital of Germany?", "Capital of Germany?"],
     "The capital of Germany is Berlin."),
    (["What is the capital of Spain?", "What's the capital of Spain?", "Capital of Spain?"],
     "The capital of Spain is Madrid."),
    (["How are you?", "How are you today?", "How is it going?"],
     "I am fine, thank you! Ready to answer your questions. 🙂"),
    (["What can you do?", "What do you know?", "Help", "What should I ask you?"],
     "I can answer a handful of simple questions, tell a joke and say hello in a few languages."),
    (["What is continuous batching?", "Explain continuous batching."],
     "Continuous batching runs many requests together and adds new ones at every step, so the engine "
     "stays busy."),
    (["What is prefix caching?", "Explain prefix caching."],
     "Prefix caching reuses the KV cache blocks of a prompt prefix that an earlier request already computed."),
    (["Write a haiku about the sea", "Write a haiku about the sea.", "A haiku about the sea, please."],
     "Waves fold into foam,\nsalt wind carries the gull's cry,\nthe tide keeps its time."),
    (["Count from one to five", "Count from 1 to 5.", "Count to five."],
     "1, 2, 3, 4, 5."),
    (["What color is the sky?", "What colour is the sky?", "Why is the sky blue?"],
     "The sky is blue on a clear day, because air scatters blue light the most."),
    (["Thank you!", "Thanks!", "Thank you", "Thanks a lot."],
     "You are welcome! 👋"),
    (["Goodbye", "Bye!", "See you later.", "Goodbye!"],
     "Goodbye, and have a good day!"),
    (["Think step by step: what is 3 times 4?", "Think step by step: what is 3*4?"],
     "<think>\nThree times four is three groups of four: 4 + 4 + 4 = 12.\n</think>\n3 × 4 = 12."),
    (["What is the weather in Paris?", "What's the weather like in Paris?", "Is it raining in London?"],
     "I cannot check the weather from here, but I hope it is sunny where you are."),
]
FALLBACK = "Sorry, I am a tiny demo model and I do not know that. Try asking me who I am!"

SYSTEM_PROMPTS = [None, None, None, "You are a helpful assistant.", "You are a friendly assistant.", "Be brief.",
                  "You are the dynamo-llm-capi demo model.", "You are a concise assistant.",
                  "Answer the user's questions.", "You answer in one sentence.", "Be polite and helpful."]
CITIES = ["Paris", "London", "Tokyo", "Berlin", "Rome", "Madrid", "Oslo", "Cairo", "Lima", "Sydney", "New York"]
CONDITIONS = ["sunny", "cloudy", "rainy", "windy", "snowy"]
WEATHER_QUESTIONS = ["What is the weather in {}?", "What's the weather like in {}?", "How is the weather in {}?",
                     "Is it raining in {}?"]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city name"}},
                   "required": ["city"]}}}
SEARCH_TOOL = {"type": "function", "function": {
    "name": "search", "description": "Search the web",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
