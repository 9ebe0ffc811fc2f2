// Tests of the data pipeline: THE preprocessing, augmentation, dataset listing and splitting, the threaded
// DataLoader, image hashes, and `mriscan data check` on a planted dataset. (Decoding and resizing: tests/io/.)
// Every image is generated in the test and written to a fresh temporary folder (tests/support/test_images.h).
#include <gtest/gtest.h>

#include <stb_image_write.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <map>
#include <set>

#include "data/augment.h"
#include "data/data_check.h"
#include "data/data_loader.h"
#include "data/dataset.h"
#include "data/content_hash.h"
#include "data/image_hash.h"
#include "data/preprocess.h"
#include "io/image_io.h"
#include "tests/support/test_images.h"

namespace fs = std::filesystem;
using namespace mriscan;
using namespace mriscan::test_images;


// ---------------------------------------------------------------------------------------------------------------
TEST(DataPreprocess, ConstantImageGivesNormalisedValues) {
  Image image(7, 5);
  for (int i = 0; i < 35; ++i) image.rgb[i * 3] = 100, image.rgb[i * 3 + 1] = 150, image.rgb[i * 3 + 2] = 200;
  std::vector<float> out(6 * 6 * 3);  // (6, 6, 3)
  preprocess(image, 6, out.data());
  const double expected[3] = {(100 / 255.0 - 0.485) / 0.229, (150 / 255.0 - 0.456) / 0.224,
                              (200 / 255.0 - 0.406) / 0.225};
  for (int i = 0; i < 36; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(out[i * 3 + c], expected[c], 1e-5);
}

TEST(DataPreprocess, OneByOneImageAndBatch) {
  Image dot(1, 1);
  dot.rgb = {255, 0, 128};
  const Tensor batch = preprocess_batch({dot, blobs_image(20, 10, 5)}, 8);
  ASSERT_EQ(batch.shape(), (Shape{2, 8, 8, 3}));
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(batch[i * 3], (1.0 - 0.485) / 0.229, 1e-5);
  std::vector<float> single(8 * 8 * 3);
  preprocess(blobs_image(20, 10, 5), 8, single.data());
  for (int i = 0; i < 192; ++i) EXPECT_EQ(batch[192 + i], single[i]);  // the batch path is the single path
  EXPECT_THROW(preprocess(Image(), 8, single.data()), ImageError);
  EXPECT_NE(PreprocessSpec{.size = 160}.describe().find("160x160"), std::string::npos);
}

// The server resizes each upload to the model's input right after decoding (resize_to_input), and preprocess then
// normalises that image as it is: the same floats as preprocess of the full image (the CLI's and the trainer's path).
TEST(DataPreprocess, ResizedOnDecodingGivesTheSameInput) {
  const Image image = blobs_image(50, 37, 5);
  std::vector<float> direct(16 * 16 * 3), resized_first(16 * 16 * 3);  // (16, 16, 3) each
  preprocess(image, 16, direct.data());
  const Image resized = resize_to_input(image, 16);
  ASSERT_EQ(resized.width, 16);
  ASSERT_EQ(resized.height, 16);
  preprocess(resized, 16, resized_first.data());
  EXPECT_EQ(direct, resized_first);
  EXPECT_THROW(resize_to_input(Image(), 16), ImageError);
  EXPECT_THROW(resize_to_input(image, 0), ImageError);
}

// ---------------------------------------------------------------------------------------------------------------
TEST(DataAugment, SeededAndSizePreserving) {
  const Image image = blobs_image(48, 40, 6);
  std::mt19937 a(7), b(7), c(8);
  const Image x = augment(image, {}, a), y = augment(image, {}, b), z = augment(image, {}, c);
  EXPECT_EQ(x.width, 48);
  EXPECT_EQ(x.height, 40);
  EXPECT_EQ(x.rgb, y.rgb);
  EXPECT_NE(x.rgb, z.rgb);
  std::mt19937 d(7);
  EXPECT_EQ(augment(image, AugmentConfig{.enabled = false}, d).rgb, image.rgb);
  EXPECT_THROW(augment(image, AugmentConfig{.min_scale = 0.0}, d), std::invalid_argument);
}

TEST(DataAugment, FlipOnlyIsAnExactMirror) {
  const Image image = blobs_image(9, 6, 9);
  const AugmentConfig flip_only{.max_rotation_degrees = 0, .min_scale = 1, .max_scale = 1,
                                .flip_probability = 1, .brightness = 0, .contrast = 0};
  std::mt19937 rng(1);
  const Image out = augment(image, flip_only, rng);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 9; ++x)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(out.pixel(x, y)[c], image.pixel(8 - x, y)[c]) << x << "," << y;
}

// ---------------------------------------------------------------------------------------------------------------
TEST(DataDataset, ScanSortsClassesAndWarnsAboutEmptyFoldersAndOtherFiles) {
  TempDir dir;
  write_image_png(dir / "split/b_class/2.png", blobs_image(8, 8, 1));
  write_image_png(dir / "split/b_class/1.PNG", blobs_image(8, 8, 2));
  fs::create_directories(dir / "split/c_empty");
  write_jpeg(dir / "split/a_class/x.JPeG", blobs_image(8, 8, 3));
  write_bytes(dir / "split/a_class/notes.txt", {'h', 'i'});
  const Dataset dataset = scan_dataset(dir / "split");
  EXPECT_EQ(dataset.class_names, (std::vector<std::string>{"a_class", "b_class", "c_empty"}));
  ASSERT_EQ(dataset.samples.size(), 3u);
  EXPECT_EQ(dataset.samples[0].label, 0);
  EXPECT_EQ(fs::path(dataset.samples[1].path).filename(), "1.PNG");  // sorted within the class
  EXPECT_EQ(dataset.class_counts(), (std::vector<int>{1, 2, 0}));
  std::string warnings;
  for (const std::string& w : dataset.warnings) warnings += w + "\n";
  EXPECT_NE(warnings.find("c_empty has no images"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("notes.txt"), std::string::npos) << warnings;

  EXPECT_NE(error_of([&] { scan_dataset(dir / "nope"); }).find("nope"), std::string::npos);
  fs::create_directories(dir / "flat");
  EXPECT_NE(error_of([&] { scan_dataset(dir / "flat"); }).find("no class folders"), std::string::npos);
  const std::string unknown = error_of([&] { scan_dataset(dir / "split", {"a_class", "b_class"}); });
  EXPECT_NE(unknown.find("c_empty"), std::string::npos) << unknown;
  const Dataset forced = scan_dataset(dir / "split", {"c_empty", "b_class", "a_class"});
  EXPECT_EQ(forced.samples[0].label, 1);  // b_class first: classes are visited in the forced order
}

TEST(DataDataset, StratifiedSplitKeepsProportionsAndIsDeterministic) {
  std::vector<Sample> samples;
  for (int i = 0; i < 100; ++i) samples.push_back({"a" + std::to_string(i), 0});
  for (int i = 0; i < 40; ++i) samples.push_back({"b" + std::to_string(i), 1});
  samples.push_back({"c0", 2});
  const auto [train, val] = stratified_split(samples, 3, 0.2, 11);
  std::vector<int> val_counts(3, 0);
  for (const Sample& s : val) val_counts[s.label]++;
  EXPECT_EQ(val_counts, (std::vector<int>{20, 8, 0}));  // a lone sample stays in training
  EXPECT_EQ(train.size() + val.size(), samples.size());
  std::set<std::string> all;
  for (const auto* part : {&train, &val})
    for (const Sample& s : *part) all.insert(s.path);
  EXPECT_EQ(all.size(), samples.size());  // disjoint and complete

  const auto again = stratified_split(samples, 3, 0.2, 11);
  const auto other = stratified_split(samples, 3, 0.2, 12);
  auto paths = [](const std::vector<Sample>& v) {
    std::vector<std::string> p;
    for (const Sample& s : v) p.push_back(s.path);
    return p;
  };
  EXPECT_EQ(paths(again.second), paths(val));
  EXPECT_NE(paths(other.second), paths(val));
  EXPECT_THROW(stratified_split(samples, 3, 1.0, 1), std::invalid_argument);
}

TEST(DataDataset, FindSharedDirHonoursTheEnvironment) {
  TempDir dir;
  const char* previous = std::getenv("MRISCAN_SHARED");
  const std::string saved = previous ? previous : "";
  setenv("MRISCAN_SHARED", dir.path.c_str(), 1);
  EXPECT_EQ(find_shared_dir(), dir.path.string());
  setenv("MRISCAN_SHARED", (dir / "missing").c_str(), 1);
  const std::string message = error_of([] { find_shared_dir(); });
  EXPECT_NE(message.find("cannot find the shared data folder"), std::string::npos) << message;
  EXPECT_NE(message.find("MRISCAN_SHARED"), std::string::npos) << message;
  if (previous) setenv("MRISCAN_SHARED", saved.c_str(), 1);
  else unsetenv("MRISCAN_SHARED");
}

// ---------------------------------------------------------------------------------------------------------------
namespace {
std::vector<Sample> write_samples(const TempDir& dir, int count) {
  std::vector<Sample> samples;
  for (int i = 0; i < count; ++i) {
    const std::string path = dir / ("s" + std::to_string(i) + ".png");
    write_image_png(path, blobs_image(24, 20, 100 + i));
    samples.push_back({path, i % 3});
  }
  return samples;
}
}  // namespace

TEST(DataLoader, YieldsEverySampleExactlyOncePerEpoch) {
  TempDir dir;
  const std::vector<Sample> samples = write_samples(dir, 10);
  DataLoader loader(samples, {.batch_size = 3, .image_size = 16, .num_workers = 2, .seed = 5});
  EXPECT_EQ(loader.batches_per_epoch(), 4);
  for (int epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    std::multiset<std::string> seen;
    std::vector<int> sizes;
    while (auto batch = loader.next()) {
      EXPECT_EQ(batch->images.shape(), (Shape{static_cast<int64_t>(batch->labels.size()), 16, 16, 3}));
      sizes.push_back(static_cast<int>(batch->labels.size()));
      for (size_t i = 0; i < batch->paths.size(); ++i) {
        seen.insert(batch->paths[i]);
        EXPECT_EQ(batch->labels[i], std::stoi(fs::path(batch->paths[i]).stem().string().substr(1)) % 3);
      }
    }
    EXPECT_EQ(sizes, (std::vector<int>{3, 3, 3, 1}));
    EXPECT_EQ(seen.size(), 10u);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 10u);  // no repeats
  }
  DataLoader dropping(samples, {.batch_size = 3, .image_size = 16, .drop_last = true});
  dropping.start_epoch(0);
  int batches = 0;
  while (dropping.next()) ++batches;
  EXPECT_EQ(batches, 3);
}

TEST(DataLoader, DeterministicGivenSeedAndEpochWhateverTheThreads) {
  TempDir dir;
  const std::vector<Sample> samples = write_samples(dir, 12);
  auto run = [&](int workers, int epoch, uint32_t seed) {
    DataLoaderConfig config{.batch_size = 4, .image_size = 16, .num_workers = workers, .seed = seed};
    config.augment.enabled = true;
    DataLoader loader(samples, config);
    loader.start_epoch(epoch);
    std::vector<std::string> order;
    std::vector<float> pixels;
    while (auto batch = loader.next()) {
      order.insert(order.end(), batch->paths.begin(), batch->paths.end());
      const std::vector<float> values = batch->images.to_vector();
      pixels.insert(pixels.end(), values.begin(), values.end());
    }
    return std::make_pair(order, pixels);
  };
  const auto one = run(1, 3, 42), three = run(3, 3, 42), inline_mode = run(0, 3, 42);
  EXPECT_EQ(one.first, three.first);
  EXPECT_EQ(one.second, three.second);  // augmentation included, bit for bit
  EXPECT_EQ(inline_mode.first, one.first);  // inline, on the kernel threads: the same batches
  EXPECT_EQ(inline_mode.second, one.second);
  EXPECT_NE(run(2, 4, 42).first, one.first);  // another epoch, another order
  EXPECT_NE(run(2, 3, 43).first, one.first);  // another seed, another order
}

TEST(DataLoader, ShardsTogetherAreTheWholeBatch) {
  TempDir dir;
  const std::vector<Sample> samples = write_samples(dir, 14);  // 14 / 4: the last batch has 2 images
  auto batches = [&](int shard, int shards) {
    DataLoaderConfig config{.batch_size = 4, .image_size = 16, .seed = 9, .shard_index = shard, .shard_count = shards};
    config.augment.enabled = true;
    DataLoader loader(samples, config);
    loader.start_epoch(2);
    std::vector<Batch> out;
    while (auto batch = loader.next()) out.push_back(std::move(*batch));
    return out;
  };
  const std::vector<Batch> whole = batches(0, 1), first = batches(0, 2), second = batches(1, 2);
  ASSERT_EQ(first.size(), whole.size());  // every process sees every batch index (the collectives stay in step)
  ASSERT_EQ(second.size(), whole.size());
  for (size_t b = 0; b < whole.size(); ++b) {
    std::vector<std::string> joined = first[b].paths;
    joined.insert(joined.end(), second[b].paths.begin(), second[b].paths.end());
    EXPECT_EQ(joined, whole[b].paths) << "batch " << b;
    std::vector<float> pixels = first[b].images.to_vector(), rest = second[b].images.to_vector();
    pixels.insert(pixels.end(), rest.begin(), rest.end());
    EXPECT_EQ(pixels, whole[b].images.to_vector()) << "batch " << b << ": augmentation must not depend on the shard";
  }
  EXPECT_EQ(first[0].paths.size(), 2u);
  EXPECT_THROW(DataLoader(samples, {.shard_index = 2, .shard_count = 2}), std::invalid_argument);
}

TEST(DataLoader, SkipsACorruptFileAndReportsIt) {
  TempDir dir;
  std::vector<Sample> samples = write_samples(dir, 5);
  write_bytes(dir / "bad.png", {1, 2, 3, 4, 5});
  samples.push_back({dir / "bad.png", 0});
  std::map<int, std::vector<float>> pixels;  // by num_workers: every delivered image, in order
  for (int workers : {2, 0}) {  // background workers, and inline
    SCOPED_TRACE("num_workers " + std::to_string(workers));
    DataLoader loader(samples, {.batch_size = 4, .image_size = 8, .num_workers = workers});
    for (int epoch = 0; epoch < 2; ++epoch) {
      loader.start_epoch(epoch);
      size_t delivered = 0;
      while (auto batch = loader.next()) {
        delivered += batch->labels.size();
        const std::vector<float> values = batch->images.to_vector();
        pixels[workers].insert(pixels[workers].end(), values.begin(), values.end());
        EXPECT_EQ(batch->images.dim(0), static_cast<int64_t>(batch->labels.size()));
        for (const std::string& path : batch->paths) EXPECT_EQ(path.find("bad.png"), std::string::npos);
      }
      EXPECT_EQ(delivered, 5u);
      EXPECT_EQ(loader.skipped_this_epoch(), 1);
    }
    ASSERT_EQ(loader.skipped_files().size(), 1u);  // listed once, however many epochs
    EXPECT_EQ(loader.skipped_files()[0].path, dir / "bad.png");
    EXPECT_NE(loader.skipped_files()[0].reason.find("cannot decode"), std::string::npos);
  }
  EXPECT_EQ(pixels[0], pixels[2]);  // the images after the skipped one moved up in place of it, in both modes
  EXPECT_THROW(DataLoader(samples, {.num_workers = -1}), std::invalid_argument);
}

TEST(DataLoader, DestructorDoesNotHangWhenTheConsumerStopsEarly) {
  TempDir dir;
  const std::vector<Sample> samples = write_samples(dir, 30);
  auto finished = std::async(std::launch::async, [&] {
    for (int round = 0; round < 3; ++round) {
      DataLoader loader(samples, {.batch_size = 2, .image_size = 16, .num_workers = 3, .prefetch_batches = 2});
      loader.start_epoch(0);
      EXPECT_TRUE(loader.next().has_value());  // take one batch, leave workers blocked on a full queue
      loader.start_epoch(1);                   // restart mid-epoch
      EXPECT_TRUE(loader.next().has_value());
    }  // destructor: must stop and join
  });
  if (finished.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "DataLoader did not shut down within 30 s";
    std::_Exit(1);  // a hung worker would also hang the future's destructor
  }
}

// ---------------------------------------------------------------------------------------------------------------
TEST(DataHash, PerceptualHashSurvivesReencodingAndSeparatesImages) {
  TempDir dir;
  const Image image = blobs_image(224, 224, 21);
  write_jpeg(dir / "q95.jpg", image, 95);
  write_jpeg(dir / "q60.jpg", image, 60);
  const Image a = load_image(dir / "q95.jpg"), b = load_image(dir / "q60.jpg");
  EXPECT_LE(hamming_distance(perceptual_hash(a), perceptual_hash(b)), 2);
  EXPECT_GT(thumbnail_correlation(normalized_thumbnail(a), normalized_thumbnail(b)), 0.99f);
  int far = 0;
  for (uint32_t seed = 22; seed < 27; ++seed)
    far += hamming_distance(perceptual_hash(a), perceptual_hash(blobs_image(224, 224, seed))) > 8;
  EXPECT_EQ(far, 5);
}

TEST(DataContentHash, IsSha256MatchingFips180Vectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 56 bytes: the padding needs a second block.
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// ---------------------------------------------------------------------------------------------------------------
TEST(DataCheck, FindsLeakageLabelConflictsAndCorruptFiles) {
  TempDir dir;
  const std::string root = dir / "data";
  uint32_t seed = 500;
  for (const char* split : {"Training", "Testing"})
    for (const char* cls : {"a", "b"})
      for (int i = 0; i < 3; ++i)
        write_image_png(root + "/" + split + "/" + cls + "/" + std::to_string(i) + ".png", noise_image(32, 32, seed++));
  // Plant: a Testing image that is a byte copy of a Training image (leakage) ...
  fs::copy_file(root + "/Training/a/0.png", root + "/Testing/a/leak.png");
  // ... a Training image filed under both classes (label conflict) ...
  fs::copy_file(root + "/Training/a/1.png", root + "/Training/b/conflict.png");
  // ... a re-encoded near copy of a Training image in Testing, and a corrupt file.
  const Image smooth = blobs_image(64, 64, 77);
  write_image_png(root + "/Training/b/smooth.png", smooth);
  write_jpeg(root + "/Testing/b/smooth_copy.jpg", smooth, 80);
  write_bytes(root + "/Testing/b/broken.jpg", {0xFF, 0xD8, 0xFF, 0x00, 0x12});

  const DataCheckReport report = run_data_check({.root = root, .threads = 2});
  EXPECT_EQ(report.splits, (std::vector<std::string>{"Testing", "Training"}));
  EXPECT_EQ(report.files.size(), 17u);
  const nlohmann::json json = report.to_json();
  EXPECT_EQ(json["exact_duplicates"]["groups"], 2);
  EXPECT_EQ(json["exact_duplicates"]["cross_split_groups"], 1);
  EXPECT_EQ(json["exact_duplicates"]["label_conflict_groups"], 1);
  EXPECT_EQ(json["exact_duplicates"]["testing_with_training_copy"], 1);
  ASSERT_EQ(json["unreadable"].size(), 1u);
  EXPECT_EQ(json["unreadable"][0]["path"], "Testing/b/broken.jpg");
  ASSERT_EQ(report.near_pairs.size(), 1u);
  std::set<std::string> near = {report.files[report.near_pairs[0].a].relative,
                                report.files[report.near_pairs[0].b].relative};
  EXPECT_EQ(near, (std::set<std::string>{"Testing/b/smooth_copy.jpg", "Training/b/smooth.png"}));

  std::set<std::string> dedup;
  for (int i : report.dedup_testing) dedup.insert(report.files[i].relative);
  EXPECT_EQ(dedup.size(), 6u);  // 9 Testing files minus the broken one, the leak and the near copy
  EXPECT_FALSE(dedup.count("Testing/a/leak.png"));
  EXPECT_FALSE(dedup.count("Testing/b/smooth_copy.jpg"));
  EXPECT_TRUE(dedup.count("Testing/a/0.png"));
  EXPECT_NE(report.to_text().find("label conflicts): 1"), std::string::npos) << report.to_text();
}
