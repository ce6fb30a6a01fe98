// Chat prompt formatting: messages -> ChatML tokens. The template's own markers are added as
// special-token ids; message text is tokenized with special-token parsing off, so a user
// who types "<|im_end|>" gets those characters, not the control token.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

class Model;
class Tokenizer;

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

// ChatML as text (for display and logs): "<|im_start|>role\ncontent<|im_end|>\n" per message,
// then "<|im_start|>assistant\n" when add_generation_prompt.
std::string format_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true);

// The same prompt as token ids, built piecewise (see the file comment). Throws
// Error("bad_input") for an unknown role, Error("unsupported_model") when the vocabulary lacks
// the ChatML tokens.
std::vector<int32_t> tokenize_chatml(const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool add_generation_prompt = true);

// What the addon and CLI call: checks the model's chat template (logs a warning once per call
// when it is not ChatML), then tokenize_chatml().
std::vector<int32_t> format_chat(const Model& model, const std::vector<ChatMessage>& messages, bool add_generation_prompt = true);

}  // namespace moe
