// proto/codec.hpp: the one decoder of control messages. A packet is untrusted: each way
// it can be wrong has its own answer, and a refusal is read whatever ABI sent it.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <slab/error.hpp>
#include <slab/proto/codec.hpp>
#include <slab/proto/protocol.hpp>

namespace {

namespace proto = slab::proto;
using proto::decode_result;
using slab::errc;

template <class M> std::vector<std::byte> bytes_of(const M& m) {
  std::vector<std::byte> b(sizeof m);
  std::memcpy(b.data(), &m, sizeof m);
  return b;
}

proto::packet packet_of(const std::vector<std::byte>& b) { return {b.data(), b.size()}; }

proto::welcome a_welcome() {
  proto::welcome w;
  w.daemon_pid = 4242;
  return w;
}

proto::error_msg a_refusal(std::uint32_t code, const char* text) {
  proto::error_msg e;
  e.code = code;
  proto::set_text(e.text, text);
  return e;
}

// What proto::expect throws for the packet, as a code and a message.
template <class M> slab::error thrown_by(const std::vector<std::byte>& b) {
  try {
    (void)proto::expect<M>(packet_of(b), "shmd at /test.sock");
  } catch (const slab::error& e) {
    return e;
  }
  ADD_FAILURE() << "expect did not throw";
  return slab::error(errc::system, "did not throw");
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(codec, a_whole_message_of_the_expected_type_decodes) {
  const std::vector<std::byte> b = bytes_of(a_welcome());
  proto::welcome out;
  ASSERT_EQ(proto::decode(packet_of(b), out), decode_result::ok);
  EXPECT_EQ(out.daemon_pid, 4242U);
  EXPECT_EQ(proto::expect<proto::welcome>(packet_of(b), "shmd").daemon_pid, 4242U);
}

TEST(codec, a_packet_shorter_than_a_header_is_short) {
  std::vector<std::byte> b = bytes_of(a_welcome());
  b.resize(sizeof(proto::msg_header) - 1);
  proto::msg_header h{};
  EXPECT_EQ(proto::read_header(packet_of(b), h), decode_result::short_message);
  proto::welcome out;
  EXPECT_EQ(proto::decode(packet_of(b), out), decode_result::short_message);
  EXPECT_EQ(proto::decode(proto::packet{}, out), decode_result::short_message);
  const slab::error e = thrown_by<proto::welcome>(b);
  EXPECT_EQ(e.code(), errc::protocol);
  EXPECT_TRUE(contains(e.what(), "shorter than its header")) << e.what();
}

TEST(codec, bad_magic_is_not_our_protocol) {
  proto::welcome w = a_welcome();
  w.h.magic = 0x48545450; // "HTTP"
  const std::vector<std::byte> b = bytes_of(w);
  proto::welcome out;
  EXPECT_EQ(proto::decode(packet_of(b), out), decode_result::bad_magic);
  const slab::error e = thrown_by<proto::welcome>(b);
  EXPECT_EQ(e.code(), errc::protocol);
  EXPECT_TRUE(contains(e.what(), "bad magic")) << e.what();
  EXPECT_TRUE(contains(e.what(), "shmd at /test.sock")) << e.what();
}

TEST(codec, another_abi_is_abi_mismatch_naming_both) {
  proto::welcome w = a_welcome();
  w.h.abi = static_cast<std::uint16_t>(proto::abi_version + 1);
  const std::vector<std::byte> b = bytes_of(w);
  proto::msg_header h{};
  EXPECT_EQ(proto::read_header(packet_of(b), h), decode_result::abi_mismatch);
  EXPECT_EQ(h.abi, proto::abi_version + 1) << "the header is read even so";
  proto::welcome out;
  EXPECT_EQ(proto::decode(packet_of(b), out), decode_result::abi_mismatch);
  const slab::error e = thrown_by<proto::welcome>(b);
  EXPECT_EQ(e.code(), errc::abi_mismatch);
  EXPECT_TRUE(contains(e.what(), "ABI " + std::to_string(proto::abi_version + 1))) << e.what();
  EXPECT_TRUE(contains(e.what(), "ABI " + std::to_string(proto::abi_version))) << e.what();
}

TEST(codec, a_refusal_of_another_abi_is_still_a_refusal) {
  proto::error_msg r = a_refusal(static_cast<std::uint32_t>(errc::permission_denied), "no entry");
  r.h.abi = static_cast<std::uint16_t>(proto::abi_version + 7);
  const std::vector<std::byte> b = bytes_of(r);
  errc code{};
  std::string text;
  ASSERT_TRUE(proto::decode_refusal(packet_of(b), code, text));
  EXPECT_EQ(code, errc::permission_denied);
  EXPECT_EQ(text, "no entry");
  const slab::error e = thrown_by<proto::welcome>(b);
  EXPECT_EQ(e.code(), errc::permission_denied) << "the peer's word, not abi_mismatch";
  EXPECT_STREQ(e.what(), "no entry");
}

TEST(codec, a_message_of_another_type_is_wrong_type) {
  const std::vector<std::byte> b = bytes_of(proto::closed{});
  proto::welcome out;
  EXPECT_EQ(proto::decode(packet_of(b), out), decode_result::wrong_type);
  errc code{};
  std::string text;
  EXPECT_FALSE(proto::decode_refusal(packet_of(b), code, text));
  const slab::error e = thrown_by<proto::welcome>(b);
  EXPECT_EQ(e.code(), errc::protocol);
  EXPECT_TRUE(contains(e.what(), "unexpected answer")) << e.what();
}

TEST(codec, the_right_type_at_the_wrong_size_is_wrong_size) {
  for (const int delta : {-1, +1}) {
    std::vector<std::byte> b = bytes_of(a_welcome());
    b.resize(static_cast<std::size_t>(static_cast<int>(b.size()) + delta));
    proto::welcome out;
    EXPECT_EQ(proto::decode(packet_of(b), out), decode_result::wrong_size) << delta;
    EXPECT_EQ(thrown_by<proto::welcome>(b).code(), errc::protocol) << delta;
  }
  // A refusal cut short is no refusal: it is read as a malformed answer.
  std::vector<std::byte> r = bytes_of(a_refusal(static_cast<std::uint32_t>(errc::exhausted), "x"));
  r.pop_back();
  errc code{};
  std::string text;
  EXPECT_FALSE(proto::decode_refusal(packet_of(r), code, text));
  EXPECT_EQ(thrown_by<proto::welcome>(r).code(), errc::protocol);
}

TEST(codec, a_refusal_code_this_build_does_not_know_is_protocol) {
  for (const std::uint32_t unknown : {0U, 200U, 0xFFFFFFFFU}) {
    const std::vector<std::byte> b = bytes_of(a_refusal(unknown, "from the future"));
    errc code{};
    std::string text;
    ASSERT_TRUE(proto::decode_refusal(packet_of(b), code, text)) << unknown;
    EXPECT_EQ(code, errc::protocol) << unknown;
    EXPECT_EQ(text, "from the future");
    EXPECT_EQ(thrown_by<proto::welcome>(b).code(), errc::protocol) << unknown;
  }
}

} // namespace
