#include "tokenizer/unicode_props.hpp"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/uniset.h>

#include <memory>

#include "util/error.hpp"

namespace fp4llm::tok {

namespace {

const icu::Normalizer2& base_instance(NormalForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::NFC: n = icu::Normalizer2::getNFCInstance(status); break;
    case NormalForm::NFD: n = icu::Normalizer2::getNFDInstance(status); break;
    case NormalForm::NFKC: n = icu::Normalizer2::getNFKCInstance(status); break;
    case NormalForm::NFKD: n = icu::Normalizer2::getNFKDInstance(status); break;
  }
  if (U_FAILURE(status) || !n) fail("ICU normalizer unavailable: {}", u_errorName(status));
  return *n;
}

const icu::UnicodeSet& unicode9_set() {
  static const icu::UnicodeSet set = [] {
    UErrorCode status = U_ZERO_ERROR;
    icu::UnicodeSet s(icu::UnicodeString(u"[:age=9.0:]"), status);
    if (U_FAILURE(status)) fail("ICU cannot build [:age=9.0:]: {}", u_errorName(status));
    s.freeze();
    return s;
  }();
  return set;
}

const icu::Normalizer2& filtered_instance(NormalForm form) {
  // Function-local statics: built once, thread-safe, and never destroyed while in use.
  static const icu::FilteredNormalizer2 nfc(base_instance(NormalForm::NFC), unicode9_set());
  static const icu::FilteredNormalizer2 nfd(base_instance(NormalForm::NFD), unicode9_set());
  static const icu::FilteredNormalizer2 nfkc(base_instance(NormalForm::NFKC), unicode9_set());
  static const icu::FilteredNormalizer2 nfkd(base_instance(NormalForm::NFKD), unicode9_set());
  switch (form) {
    case NormalForm::NFC: return nfc;
    case NormalForm::NFD: return nfd;
    case NormalForm::NFKC: return nfkc;
    case NormalForm::NFKD: return nfkd;
  }
  return nfc;
}

// Text made only of characters below U+0300 is already in NFC: none of them changes under
// NFC and every character that can compose with a preceding one is U+0300 or above.
bool below_u0300(std::string_view s) {
  for (const char c : s)
    if (static_cast<unsigned char>(c) >= 0xCC) return false;
  return true;
}

}  // namespace

void normalize_unicode(NormalForm form, std::string_view in, std::string& out) {
  if (form == NormalForm::NFC && below_u0300(in)) {
    out.assign(in);
    return;
  }
  const icu::Normalizer2& n = filtered_instance(form);
  UErrorCode status = U_ZERO_ERROR;
  out.clear();
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(in.size()));
  n.normalizeUTF8(0, icu::StringPiece(in.data(), static_cast<int32_t>(in.size())), sink, nullptr,
                  status);
  if (U_FAILURE(status)) fail("Unicode normalization failed: {}", u_errorName(status));
}

bool is_white_space(char32_t cp) { return u_hasBinaryProperty(UChar32(cp), UCHAR_WHITE_SPACE); }

bool is_word_char(char32_t cp) {
  const auto c = UChar32(cp);
  if (u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL))
    return true;
  return (U_GET_GC_MASK(c) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

}  // namespace fp4llm::tok
