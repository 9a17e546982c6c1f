#include "sip/editor.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sip/params.h"

// How the edits are kept: splices_ is the whole edit state, sorted by (begin, end) so that
// serialize_to() walks it once without sorting or allocating. Each edit looks at the splices
// already recorded to act on the message as edited so far:
//   - a removed header line is one splice covering HeaderField::line exactly;
//   - popped leading values of a Via/Route line are one removal starting at the value's first
//     byte, so the number of values popped from a line is read back from its end;
//   - a replaced header value is one splice starting at the value's first byte;
//   - added header lines live in insertion splices (begin == end) in the header section:
//     pushed Vias before the first received Via line (newest first), added Record-Routes
//     before the first received Record-Route line (newest first), everything else at the end
//     of the header section (in the order added). Each holds whole "Name: value\r\n" lines;
//   - the body is one splice covering the received body (an insertion when it was empty).
// No two splices overlap, so the edits compose in any order.

namespace sip {
namespace {

constexpr std::string_view kCrlf = "\r\n";

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}

// Position of `part` inside `raw`. A view that does not point into raw (only an empty view
// with no buffer can, for a message the parser produced) maps to raw.size().
std::size_t offset_in(std::string_view raw, std::string_view part) {
  const auto base = reinterpret_cast<std::uintptr_t>(raw.data());
  const auto at = reinterpret_cast<std::uintptr_t>(part.data());
  if (part.data() == nullptr || at < base || at - base > raw.size()) return raw.size();
  return static_cast<std::size_t>(at - base);
}

// "Name: value\r\n", in `arena`.
std::pmr::string header_line(std::string_view name, std::string_view value,
                             std::pmr::memory_resource* arena) {
  std::pmr::string line(arena);
  line.reserve(name.size() + value.size() + 4);
  line.append(name).append(": ").append(value).append(kCrlf);
  return line;
}

// Length of the first line of added text, its line end and any folded continuation included.
std::size_t added_line_length(std::string_view text) {
  std::size_t pos = 0;
  while (true) {
    const std::size_t lf = text.find('\n', pos);
    if (lf == std::string_view::npos) return text.size();
    if (lf + 1 == text.size() || !is_wsp(text[lf + 1])) return lf + 1;
    pos = lf + 1;
  }
}

// The name of an added line ("Name: value\r\n").
std::string_view added_line_name(std::string_view line) {
  return line.substr(0, std::min(line.find(':'), line.size()));
}

// Which header lines an edit is about: by id, or (id == kOther) by name as written. A kOther
// match with an empty name matches every header the parser did not recognise.
struct HeaderMatch {
  HeaderId id;
  std::string_view name;

  bool operator()(HeaderId line_id, std::string_view line_name) const {
    if (id != HeaderId::kOther) return line_id == id;
    return line_id == HeaderId::kOther && (name.empty() || iequals(line_name, name));
  }
};

// The byte positions of one received header line within raw.
struct LineSpan {
  std::size_t begin;        // first byte of the name
  std::size_t end;          // one past the line end (of the last continuation line)
  std::size_t value_begin;  // first byte of the trimmed value
  std::size_t value_end;
};

LineSpan line_span(std::string_view raw, const HeaderField& header) {
  LineSpan span{};
  span.begin = offset_in(raw, header.line);
  span.end = std::min(span.begin + header.line.size(), raw.size());
  const std::size_t value_at = offset_in(raw, header.value);
  if (header.value.data() != nullptr && value_at > span.begin && value_at <= span.end) {
    span.value_begin = value_at;
    span.value_end = std::min(value_at + header.value.size(), span.end);
    return span;
  }
  // An empty value the parser left without a position: just after the colon and its blanks.
  std::size_t pos = span.begin + std::min(header.line.find(':'), header.line.size());
  if (pos < span.end) ++pos;
  while (pos < span.end && is_wsp(raw[pos])) ++pos;
  span.value_begin = span.value_end = pos;
  return span;
}

// Where the header section ends: one past the last header line (the empty line follows).
std::size_t header_section_end(const Message& message) {
  const std::string_view raw = message.raw;
  if (!message.headers.empty()) return line_span(raw, message.headers.back()).end;
  std::size_t pos =
      std::min(offset_in(raw, message.start_line) + message.start_line.size(), raw.size());
  if (pos < raw.size() && raw[pos] == '\r') ++pos;
  if (pos < raw.size() && raw[pos] == '\n') ++pos;
  return pos;
}

// Where lines added "on top" of a header go: before the first received line with this id,
// or before the first header line when there is none.
std::size_t insertion_point(const Message& message, HeaderId id) {
  const HeaderField* first = message.find(id);
  if (first == nullptr && !message.headers.empty()) first = &message.headers.front();
  if (first == nullptr) return header_section_end(message);
  return line_span(message.raw, *first).begin;
}

template <typename Splice>
void insert_sorted(std::pmr::vector<Splice>& splices, std::size_t begin, std::size_t end,
                   std::pmr::string text) {
  // upper_bound: a splice added later at the same place goes after the earlier ones, and an
  // insertion (begin == end) goes before a replacement that starts at the same byte.
  const auto at = std::upper_bound(splices.begin(), splices.end(), std::pair(begin, end),
                                   [](const std::pair<std::size_t, std::size_t>& key,
                                      const Splice& s) { return key < std::pair(s.begin, s.end); });
  splices.insert(at, Splice{begin, end, std::move(text)});
}

// The edit operations, written against the splice list. A class template so that it can
// work on MessageEditor's private Splice type without naming it.
template <typename Splice>
class SpliceList {
 public:
  SpliceList(std::pmr::vector<Splice>& splices, const Message& message)
      : splices_(splices), message_(message), raw_(message.raw) {}

  // New text in the editor's arena, where the splices keep theirs.
  std::pmr::memory_resource* arena() const { return splices_.get_allocator().resource(); }
  std::pmr::string text(std::string_view s = {}) const { return std::pmr::string(s, arena()); }

  // The lines in `text` go on top of the lines already added at `at` by earlier calls.
  // `prefix` ("Via:") tells this group apart from another inserted at the same place.
  void push_line(std::size_t at, std::string_view prefix, std::pmr::string text) {
    Splice* group = find_insertion(at, prefix);
    if (group == nullptr) {
      insert_sorted(splices_, at, at, std::move(text));
    } else {
      group->text.insert(0, text);
    }
  }

  // Removes the newest line added at `at` under `prefix`. Returns false if there is none.
  bool pop_pushed_line(std::size_t at, std::string_view prefix) {
    Splice* group = find_insertion(at, prefix);
    if (group == nullptr) return false;
    group->text.erase(0, added_line_length(group->text));
    if (group->text.empty()) erase(group);
    return true;
  }

  void append_line(std::pmr::string text) {
    const std::size_t at = header_section_end(message_);
    Splice* group = find_insertion(at, "");
    if (group == nullptr) {
      insert_sorted(splices_, at, at, std::move(text));
    } else {
      group->text.append(text);
    }
  }

  // Removes the first value still present among the received lines of `id` (whose values, in
  // order, are `values`): the whole line when it is that line's last value, else the value and
  // the separator up to the next one. Returns false if no value is left.
  template <typename Values>
  bool pop_received_value(HeaderId id, const Values& values) {
    for (const HeaderField& header : message_.headers) {
      if (header.id != id) continue;
      const LineSpan span = line_span(raw_, header);
      if (is_line_removed(span)) continue;
      // This line's values (as views into raw) are those that start inside its value.
      std::size_t first = 0;
      while (first < values.size() && offset_in(raw_, values[first].text) < span.value_begin) {
        ++first;
      }
      std::size_t last = first;
      while (last < values.size() && offset_in(raw_, values[last].text) < span.value_end) ++last;
      Splice* popped = find_splice(span.value_begin);
      std::size_t count = last - first;
      std::size_t already = 0;
      if (popped != nullptr && !popped->text.empty()) {
        count = 1;  // set_header_value() replaced the whole value: one value now
      } else if (popped != nullptr) {
        while (already < count && value_end(values[first + already]) <= popped->end) ++already;
      }
      if (already + 1 >= count) {
        if (popped != nullptr) erase(popped);
        remove_line(span);
        return true;
      }
      // Drop the value, its comma and the blanks up to the next value.
      std::size_t cut = value_end(values[first + already]);
      while (cut < span.value_end &&
             (is_wsp(raw_[cut]) || raw_[cut] == ',' || raw_[cut] == '\r' || raw_[cut] == '\n')) {
        ++cut;
      }
      if (popped != nullptr) {
        popped->end = cut;  // nothing else starts inside a value, so the order still holds
      } else {
        insert_sorted(splices_, span.value_begin, cut, text());
      }
      return true;
    }
    return false;
  }

  // Removes every received and every added header line that `match` selects.
  void remove(HeaderMatch match) {
    for (const HeaderField& header : message_.headers) {
      if (!match(header.id, header.name)) continue;
      const LineSpan span = line_span(raw_, header);
      if (is_line_removed(span)) continue;
      // Edits inside the line (value replaced, values popped) go with it.
      std::erase_if(splices_, [&](const Splice& s) {
        return (s.begin > span.begin && s.begin < span.end) ||
               (s.begin == span.begin && s.end > s.begin);
      });
      remove_line(span);
    }
    const std::size_t section_end = header_section_end(message_);
    const auto matches = [&](std::string_view line) {
      const std::string_view name = added_line_name(line);
      return match(header_id(name), name);
    };
    for (Splice& s : splices_) {
      if (s.begin != s.end || s.begin > section_end) continue;
      // Added text seldom holds a line to remove (a proxy strips headers it did not add):
      // look before copying.
      bool any = false;
      for (std::string_view rest = s.text; !rest.empty() && !any;) {
        const std::string_view line = rest.substr(0, added_line_length(rest));
        any = matches(line);
        rest.remove_prefix(line.size());
      }
      if (!any) continue;
      std::pmr::string kept = text();
      for (std::string_view rest = s.text; !rest.empty();) {
        const std::string_view line = rest.substr(0, added_line_length(rest));
        if (!matches(line)) kept.append(line);
        rest.remove_prefix(line.size());
      }
      s.text = std::move(kept);
    }
    std::erase_if(splices_, [&](const Splice& s) {
      return s.begin == s.end && s.begin <= section_end && s.text.empty();
    });
  }

  // Replaces the value of the first received line with this id that is still present; else of
  // the first added one; else adds the header at the end.
  void set_value(HeaderId id, std::string_view value) {
    for (const HeaderField& header : message_.headers) {
      if (header.id != id) continue;
      const LineSpan span = line_span(raw_, header);
      if (is_line_removed(span)) continue;
      // A replacement or popped values of this line start at its value: take their place.
      if (Splice* existing = find_splice(span.value_begin)) {
        existing->end = span.value_end;
        existing->text.assign(value);
      } else {
        insert_sorted(splices_, span.value_begin, span.value_end, text(value));
      }
      return;
    }
    const std::size_t section_end = header_section_end(message_);
    for (Splice& s : splices_) {
      if (s.begin != s.end || s.begin > section_end) continue;
      std::size_t pos = 0;
      while (pos < s.text.size()) {
        const std::size_t length = added_line_length(std::string_view(s.text).substr(pos));
        const std::string_view line = std::string_view(s.text).substr(pos, length);
        const std::string_view name = added_line_name(line);
        if (header_id(name) == id) {
          // Added lines read "Name: value" and end in CRLF.
          const std::size_t value_at = pos + name.size() + 2;
          const std::size_t value_length = length - name.size() - 2 - kCrlf.size();
          s.text.replace(value_at, value_length, value);
          return;
        }
        pos += length;
      }
    }
    append_line(header_line(canonical_name(id), value, arena()));
  }

  // Replaces the range [begin, end) that only this kind of edit ever starts at.
  void replace(std::size_t begin, std::size_t end, std::string_view with) {
    if (Splice* existing = find_splice(begin)) {
      existing->end = end;
      existing->text.assign(with);
    } else {
      insert_sorted(splices_, begin, end, text(with));
    }
  }

 private:
  std::size_t value_end(const auto& value) const {
    return offset_in(raw_, value.text) + value.text.size();
  }

  Splice* find_splice(std::size_t begin) {
    for (Splice& s : splices_) {
      if (s.begin == begin) return &s;
    }
    return nullptr;
  }

  Splice* find_insertion(std::size_t at, std::string_view prefix) {
    for (Splice& s : splices_) {
      if (s.begin == at && s.end == at && std::string_view(s.text).starts_with(prefix)) {
        return &s;
      }
    }
    return nullptr;
  }

  bool is_line_removed(const LineSpan& span) const {
    return std::any_of(splices_.begin(), splices_.end(), [&](const Splice& s) {
      return s.begin == span.begin && s.end == span.end && s.end > s.begin;
    });
  }

  void remove_line(const LineSpan& span) {
    insert_sorted(splices_, span.begin, span.end, text());
  }

  void erase(Splice* s) { splices_.erase(splices_.begin() + (s - splices_.data())); }

  std::pmr::vector<Splice>& splices_;
  const Message& message_;
  const std::string_view raw_;
};

constexpr std::string_view kViaPrefix = "Via:";
constexpr std::string_view kRecordRoutePrefix = "Record-Route:";

}  // namespace

void MessageEditor::set_request_uri(std::string_view uri) {
  if (!message_.is_request()) return;
  const std::size_t begin = offset_of(message_.request_uri.text);
  SpliceList(splices_, message_).replace(begin, begin + message_.request_uri.text.size(), uri);
}

void MessageEditor::push_via(std::string_view value) {
  SpliceList(splices_, message_)
      .push_line(insertion_point(message_, HeaderId::kVia), kViaPrefix,
                 header_line(canonical_name(HeaderId::kVia), value, &arena_));
}

bool MessageEditor::pop_via() {
  SpliceList list(splices_, message_);
  // The newest pushed Via is the topmost one.
  return list.pop_pushed_line(insertion_point(message_, HeaderId::kVia), kViaPrefix) ||
         list.pop_received_value(HeaderId::kVia, message_.via);
}

void MessageEditor::add_record_route(std::string_view value) {
  SpliceList(splices_, message_)
      .push_line(insertion_point(message_, HeaderId::kRecordRoute), kRecordRoutePrefix,
                 header_line(canonical_name(HeaderId::kRecordRoute), value, &arena_));
}

bool MessageEditor::pop_route() {
  return SpliceList(splices_, message_).pop_received_value(HeaderId::kRoute, message_.route);
}

void MessageEditor::remove_headers(HeaderId id) {
  if (id == HeaderId::kCount_) return;
  SpliceList(splices_, message_).remove(HeaderMatch{id, {}});
}

void MessageEditor::remove_headers(std::string_view name) {
  if (name.empty()) return;  // no header has an empty name
  SpliceList(splices_, message_).remove(HeaderMatch{header_id(name), name});
}

void MessageEditor::set_header_value(HeaderId id, std::string_view value) {
  // kOther has no name to write; kCount_ is not a header.
  if (id == HeaderId::kOther || id == HeaderId::kCount_) return;
  SpliceList(splices_, message_).set_value(id, value);
}

void MessageEditor::add_header(std::string_view name, std::string_view value) {
  SpliceList(splices_, message_).append_line(header_line(name, value, &arena_));
}

void MessageEditor::set_body(std::string_view body) {
  // raw ends where the body ends (bytes after it in a datagram are not part of the message).
  const std::size_t end = message_.raw.size();
  const std::size_t begin = end - std::min(message_.body.size(), end);
  SpliceList list(splices_, message_);
  list.replace(begin, end, body);
  list.set_value(HeaderId::kContentLength, std::to_string(body.size()));
}

std::string MessageEditor::serialize() const {
  std::string out;
  serialize_to(out);
  return out;
}

void MessageEditor::serialize_to(std::string& out) const {
  const std::string_view raw = message_.raw;
  // Two walks over the same sorted splices: the first sizes the output, the second writes it.
  auto walk = [&](auto&& copy) {
    std::size_t cursor = 0;
    for (const Splice& s : splices_) {
      // Splices never overlap; should one ever do, its bytes are not copied twice.
      const std::size_t begin = std::min(std::max(s.begin, cursor), raw.size());
      copy(raw.substr(cursor, begin - cursor));
      copy(std::string_view(s.text));
      cursor = std::max(begin, std::min(s.end, raw.size()));
    }
    copy(raw.substr(cursor));
  };
  std::size_t size = 0;
  walk([&](std::string_view part) { size += part.size(); });
  out.reserve(out.size() + size);
  walk([&](std::string_view part) { out.append(part); });
}

std::size_t MessageEditor::offset_of(std::string_view part) const {
  return offset_in(message_.raw, part);
}

}  // namespace sip
