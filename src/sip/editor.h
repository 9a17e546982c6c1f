// Editing a parsed message the way a proxy must (RFC 3261 §16.6), byte-preserving: every byte
// that no edit touches is copied to the output exactly as received (folding, odd spacing,
// compact names and unknown headers included).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string>
#include <string_view>
#include <vector>

#include "sip/message.h"

namespace sip {

// Collects edits against one parsed Message and produces the edited bytes. The Message and
// the buffer it was parsed from must outlive the editor. Edits are recorded, not applied, so
// adding them is cheap; serialize() applies them all in one pass. New header lines are written
// with the canonical name and ": " and end in CRLF.
class MessageEditor {
 public:
  // A forwarded request or relayed response takes a handful of edits: room for them at once.
  explicit MessageEditor(const Message& message) : message_(message) { splices_.reserve(8); }
  MessageEditor(const MessageEditor&) = delete;
  MessageEditor& operator=(const MessageEditor&) = delete;

  // Replaces the Request-URI (requests only; ignored for responses).
  void set_request_uri(std::string_view uri);

  // Adds a Via value on top: a new "Via: <value>" line above the first Via line (or before
  // the first header line if there is none); the newest pushed Via is topmost.
  // (A proxy's own Via goes first, RFC 3261 §16.6 step 8.) Values are written as given: the
  // caller guarantees they hold no CR or LF (true of every edit's value).
  void push_via(std::string_view value);

  // Removes the topmost Via value: the whole line when it holds one value, otherwise only the
  // first comma-separated element (and its comma). Returns false if there is no Via.
  // (A proxy removes its own Via from responses, RFC 3261 §16.7 step 3.)
  bool pop_via();

  // Adds "Record-Route: <value>" above any existing Record-Route (RFC 3261 §16.6 step 4),
  // or before the first header line if there is none. `value` is a full name-addr such as
  // "<sip:proxy.example.com;lr>".
  void add_record_route(std::string_view value);

  // Removes the first Route value, like pop_via() does for Via (loose routing, §16.4).
  // Returns false if there is no Route.
  bool pop_route();

  // Removes every header line with this id / name (case-insensitive, compact forms honoured),
  // lines added by this editor included. remove_headers(HeaderId::kOther) removes every header
  // the parser does not know.
  void remove_headers(HeaderId id);
  void remove_headers(std::string_view name);

  // Replaces the value of the first header with this id, keeping its name as written; adds the
  // header at the end of the header section when absent (e.g. Max-Forwards). Does nothing for
  // HeaderId::kOther (there is no name to write). The last call for an id wins.
  void set_header_value(HeaderId id, std::string_view value);

  // Appends "Name: value" at the end of the header section.
  void add_header(std::string_view name, std::string_view value);

  // Replaces the body and rewrites Content-Length to match (adding it when absent).
  void set_body(std::string_view body);

  // The edited message. Content-Length stays as received unless set_body was called.
  std::string serialize() const;
  // Same, appended to `out` (lets a worker reuse one output buffer).
  void serialize_to(std::string& out) const;

 private:
  // One replacement of the input's bytes [begin, end) with `text` (begin == end: insertion).
  struct Splice {
    std::size_t begin;
    std::size_t end;
    std::pmr::string text;  // in arena_
  };
  std::size_t offset_of(std::string_view part) const;  // position of a view inside raw

  const Message& message_;
  // The splices and their text live in this arena, which starts inside the editor: the edits
  // of a forwarded request (a Via pushed and one rewritten, Record-Routes, the Request-URI,
  // Max-Forwards) cost no allocation, where they cost about six a message. What does not fit
  // spills to the heap. Nothing is freed before the editor goes.
  std::array<std::byte, 1024> buffer_;
  std::pmr::monotonic_buffer_resource arena_{buffer_.data(), buffer_.size()};
  std::pmr::vector<Splice> splices_{&arena_};
};

}  // namespace sip
