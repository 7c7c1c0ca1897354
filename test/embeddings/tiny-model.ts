import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/**
 * Writes a tiny BERT-shaped feature-extraction model that transformers.js loads from a local
 * directory: a WordPiece tokenizer.json over `words`, and an ONNX graph that is one embedding
 * lookup (Gather) from input_ids to last_hidden_state. Token i's vector is a fixed pseudo-random
 * unit vector, so mean pooling gives texts with shared words similar vectors.
 */
export function writeTinyModel(dir: string, words: string[], hidden = 16): void {
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]'];
  const vocabList = [...specials, ...words.map((w) => w.toLowerCase())];
  const vocab = Object.fromEntries(vocabList.map((w, i) => [w, i]));
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      tokenizer_class: 'BertTokenizer',
      do_lower_case: true,
      model_max_length: 128,
      cls_token: '[CLS]',
      sep_token: '[SEP]',
      pad_token: '[PAD]',
      unk_token: '[UNK]',
    }),
  );
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'bert',
      architectures: ['BertModel'],
      hidden_size: hidden,
      vocab_size: vocabList.length,
      num_hidden_layers: 0,
      max_position_embeddings: 128,
    }),
  );
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const table = new Float32Array(vocabList.length * hidden);
  for (let i = 0; i < vocabList.length; i++) {
    const row = Array.from({ length: hidden }, rnd);
    const n = Math.hypot(...row);
    // special tokens contribute nothing, so mean pooling reflects the words
    row.forEach((x, j) => (table[i * hidden + j] = i < specials.length ? 0 : x / n));
  }
  const intInput = (name: string) => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.INT64,
        shape: { dim: [{ dimParam: 'batch' }, { dimParam: 'seq' }] },
      },
    },
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'ans-test',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tiny',
      input: [intInput('input_ids'), intInput('attention_mask'), intInput('token_type_ids')],
      initializer: [
        {
          name: 'emb',
          dims: [vocabList.length, hidden],
          dataType: onnx.TensorProto.DataType.FLOAT,
          rawData: new Uint8Array(table.buffer),
        },
      ],
      node: [
        {
          opType: 'Gather',
          input: ['emb', 'input_ids'],
          output: ['last_hidden_state'],
          attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
        },
      ],
      output: [
        {
          name: 'last_hidden_state',
          type: {
            tensorType: {
              elemType: onnx.TensorProto.DataType.FLOAT,
              shape: { dim: [{ dimParam: 'batch' }, { dimParam: 'seq' }, { dimValue: hidden }] },
            },
          },
        },
      ],
    },
  });
  writeFileSync(join(dir, 'onnx', 'model.onnx'), onnx.ModelProto.encode(model).finish());
}
