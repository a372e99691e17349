import t from 'tap';
import { closestName, didYouMean } from '../../runtime/core/suggest.js';

t.test('closestName suggests a near id and nothing for a far one', async (t) => {
  const ids = ['local-files', 'amazon-s3', 'http-client'];
  t.equal(closestName('local-file', ids), 'local-files');
  t.equal(closestName('Amazon-S4', ids), 'amazon-s3');
  t.equal(closestName('s3', ids), 'amazon-s3', 'a part of an id');
  t.equal(closestName('salesforce', ids), undefined);
  t.equal(didYouMean('local-file', ids), ' (did you mean "local-files"?)');
  t.equal(didYouMean('salesforce', ids), '');
});
