"""Reference side of the chat-template parity test: transformers' own tokenizer and chat template.

Reads a JSON request {"dir": checkpoint dir, "texts": [...], "conversations": [...]} from argv[1]
and writes {"ids": [[...]], "rendered": [...], "rendered_ids": [[...]]} to argv[2]. A conversation
is {"messages": [{"role","content"[,"reasoning_content"]}], "add_generation_prompt": bool} with
optional "enable_thinking" (left out: the template's own default).
"""
import json
import sys

from transformers import AutoTokenizer


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        req = json.load(f)
    tok = AutoTokenizer.from_pretrained(req["dir"], local_files_only=True)
    out = {"ids": [tok(t, add_special_tokens=False)["input_ids"] for t in req["texts"]],
           "rendered": [], "rendered_ids": []}
    for c in req["conversations"]:
        kw = {"add_generation_prompt": c["add_generation_prompt"]}
        if "enable_thinking" in c:
            kw["enable_thinking"] = c["enable_thinking"]
        out["rendered"].append(tok.apply_chat_template(c["messages"], tokenize=False, **kw))
        ids = tok.apply_chat_template(c["messages"], tokenize=True, return_dict=False, **kw)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        out["rendered_ids"].append(list(ids))
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
