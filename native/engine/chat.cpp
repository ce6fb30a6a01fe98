// Chat prompt formatting (see chat.h).
//
// We do not run the GGUF's Jinja `tokenizer.chat_template`: a Jinja engine is out of scope.
// SmallThinker ships a ChatML template, so ChatML is what we emit; a template that does not
// mention <|im_start|> gets a warning, and we still use ChatML.
#include "engine/chat.h"

#include "core/common.h"
#include "model/model.h"
#include "model/tokenizer.h"

namespace moe {

static const char* const kImStart = "<|im_start|>";
static const char* const kImEnd = "<|im_end|>";

static void check_role(const std::string& role) {
    if (role != "system" && role != "user" && role != "assistant")
        throw Error("bad_input", "Unknown chat role \"" + role + "\": use system, user or assistant.");
}

std::string format_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
    std::string out;
    for (const auto& m : messages) {
        check_role(m.role);
        out += kImStart;
        out += m.role;
        out += '\n';
        out += m.content;
        out += kImEnd;
        out += '\n';
    }
    if (add_generation_prompt) {
        out += kImStart;
        out += "assistant\n";
    }
    return out;
}

static int32_t special_id(const Tokenizer& tok, const char* text) {
    const int32_t id = tok.token_id(text);
    if (id < 0 || id >= tok.n_vocab())
        throw Error("unsupported_model", strfmt("The model's vocabulary has no %s token, so it cannot use the ChatML chat format.", text));
    return id;
}

std::vector<int32_t> tokenize_chatml(const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
    const int32_t im_start = special_id(tok, kImStart);
    const int32_t im_end = special_id(tok, kImEnd);
    std::vector<int32_t> ids;
    auto append_text = [&](const std::string& text) {
        // parse_special=false: message text never turns into control tokens.
        const auto part = tok.encode(text, /*parse_special=*/false);
        ids.insert(ids.end(), part.begin(), part.end());
    };
    // Special tokens split the text exactly where a whole-string tokenization would split it,
    // so "role\ncontent" as one fragment tokenizes the same as llama.cpp's formatted string.
    for (const auto& m : messages) {
        check_role(m.role);
        ids.push_back(im_start);
        append_text(m.role + "\n" + m.content);
        ids.push_back(im_end);
        append_text("\n");
    }
    if (add_generation_prompt) {
        ids.push_back(im_start);
        append_text("assistant\n");
    }
    return ids;
}

std::vector<int32_t> format_chat(const Model& model, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
    const std::string& tmpl = model.chat_template();
    if (!tmpl.empty() && tmpl.find(kImStart) == std::string::npos)
        log(LogLevel::Warn, "The model's chat template is not ChatML; formatting the prompt as ChatML anyway.");
    return tokenize_chatml(model.tokenizer(), messages, add_generation_prompt);
}

}  // namespace moe
